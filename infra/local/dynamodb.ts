// Loopback DynamoDB: dynalite, in memory, on 127.0.0.1. dynalite 4.0.0 has no TransactWriteItems/
// TransactGetItems and no UpdateTimeToLive (both answer 400 UnknownOperationException; DescribeTimeToLive says
// DISABLED), so the ledger must not depend on either.
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceInUseException,
} from '@aws-sdk/client-dynamodb';
import { listenLoopback } from './http.js';

export interface DynamoEmulator {
  endpoint: string;
  close(): Promise<void>;
}

interface DynaliteOptions {
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
  path?: string;
}

// dynalite ships no type declarations; this is the one call we make.
const dynalite = createRequire(import.meta.url)('dynalite') as (opts: DynaliteOptions) => Server;

export async function startDynamo(opts: { port?: number } = {}): Promise<DynamoEmulator> {
  // dynalite keeps new tables CREATING for 500 ms by default; tests want them at once. CreateTable still answers
  // CREATING, so callers must wait for ACTIVE like they would in AWS (createTable below does).
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const endpoint = await listenLoopback(server, opts.port);
  return {
    endpoint,
    close: () =>
      new Promise<void>((resolve, reject) => {
        // dynalite's close() also closes its LevelDB store once the HTTP server has stopped.
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** Creates the table (an existing one is fine) and resolves once it is ACTIVE. */
export async function createTable(client: DynamoDBClient, def: CreateTableCommandInput): Promise<void> {
  try {
    await client.send(new CreateTableCommand(def));
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }
  const deadline = Date.now() + 10_000;
  for (;;) {
    const out = await client.send(new DescribeTableCommand({ TableName: def.TableName }));
    if (out.Table?.TableStatus === 'ACTIVE') return;
    if (Date.now() > deadline) {
      throw new Error(`table ${def.TableName} not ACTIVE after 10 s (status ${out.Table?.TableStatus})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
