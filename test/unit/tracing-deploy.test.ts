// Tracing is a deploy setting, not code in the bundles (issue 11 item 1): the osls plugin's
// ${otel:layers} variable and the exec wrapper it adds, checked without packaging.
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM without type declarations (osls loads it without tsx)
import EksAccessGrantsPlugin from '../../infra/scripts/osls-plugin.mjs';

const ADOT = 'arn:aws:lambda:eu-west-1:615299751070:layer:AWSOpenTelemetryDistroJs:8';

interface Resolved {
  value: unknown;
}
interface Plugin {
  configurationVariablesSources: {
    otel: {
      resolve(arg: { address: string; resolveVariable(v: string): Promise<unknown> }): Promise<Resolved>;
    };
  };
  applyOpenTelemetry(): void;
}

function plugin(params: Record<string, string>) {
  const service = { provider: { environment: { POLICY_PATH: './policy.json' } as Record<string, string> } };
  const serverless = {
    service,
    classes: {
      Error: class extends Error {
        constructor(
          message: string,
          readonly code: string,
        ) {
          super(message);
        }
      },
    },
  };
  const p = new EksAccessGrantsPlugin(serverless, {}, { log: {} }) as Plugin;
  const resolveVariable = async (v: string) => {
    const name = /^param:(\w+)/.exec(v)?.[1] ?? '';
    return params[name] ?? '';
  };
  const layers = (address = 'layers') =>
    p.configurationVariablesSources.otel.resolve({ address, resolveVariable });
  return { p, service, layers };
}

describe('the OpenTelemetry layer is opt-in and outside the bundles', () => {
  it('adds no layer and no exec wrapper by default', async () => {
    const { p, service, layers } = plugin({});
    expect((await layers()).value).toEqual([]);
    p.applyOpenTelemetry();
    expect(service.provider.environment).toEqual({ POLICY_PATH: './policy.json' });
  });

  it('adds the layer and sets AWS_LAMBDA_EXEC_WRAPPER to the wrapper when otelLayerArn is set', async () => {
    const { p, service, layers } = plugin({ otelLayerArn: ADOT, otelExecWrapper: '/opt/otel-instrument' });
    expect((await layers()).value).toEqual([ADOT]);
    p.applyOpenTelemetry();
    expect(service.provider.environment).toEqual({
      POLICY_PATH: './policy.json',
      AWS_LAMBDA_EXEC_WRAPPER: '/opt/otel-instrument',
    });
  });

  it('refuses an otelLayerArn that is not a layer version ARN, naming the value', async () => {
    const { layers } = plugin({
      otelLayerArn: 'AWSOpenTelemetryDistroJs',
      otelExecWrapper: '/opt/otel-instrument',
    });
    await expect(layers()).rejects.toThrow(
      /otelLayerArn must be a Lambda layer version ARN.*AWSOpenTelemetryDistroJs/,
    );
  });

  it('refuses a wrapper outside /opt (where layers are extracted), since it would fail every cold start', async () => {
    const { layers } = plugin({ otelLayerArn: ADOT, otelExecWrapper: 'otel-instrument' });
    await expect(layers()).rejects.toThrow(
      /otelExecWrapper must be a script the layer puts under \/opt\/, got otel-instrument/,
    );
  });

  it('refuses an otel: variable other than otel:layers', async () => {
    const { layers } = plugin({});
    await expect(layers('wrapper')).rejects.toThrow(/use otel:layers/);
  });
});
