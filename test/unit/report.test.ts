import { describe, expect, it } from 'vitest';
import { renderOutcomes } from '../../infra/local/report.js';

describe('local-mode outcome report', () => {
  it('renders an event that is not an audit record as such instead of crashing', () => {
    // A CloudTrail event's detail, and shapes a newer or broken publisher could send.
    const text = renderOutcomes([
      { eventName: 'TagRole', userIdentity: {} },
      null,
      'text',
      { requestId: 'r-1', outcome: 'granted', changes: [null, { operation: 5 }] },
      { requestId: 'r-2', outcome: 'rejected', reason: { code: 'X' } },
    ]);
    const rows = text.split('\n').slice(2);
    expect(rows).toHaveLength(5);
    expect(rows[0]).toMatch(/^-\s+-\s+\(not an audit record\)/);
    expect(rows[3]).toMatch(/^r-1\s+-\s+granted\s+-\s+\?, \?$/);
    expect(rows[4]).toMatch(/^r-2 .*X:$/);
  });
});
