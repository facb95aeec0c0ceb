/**
 * A virtual clock for discrete-event simulation of async code: `sleep(ms)` parks the caller on a timer
 * heap, and `run()` jumps the clock from timer to timer, letting every promise chain settle in between.
 * Real code runs unchanged on it when its clock and sleep are injected (DESIGN.md style 4).
 *
 * Timers due within `quantumMs` of the earliest one are released together (the clock then reads the
 * latest of them): one event-loop turn per quantum instead of per timer. A woken caller sees the clock at
 * most one quantum late, so simulated work only ever takes longer than exact timing would give.
 */
interface Timer {
  at: number;
  seq: number;
  resolve: () => void;
}

export class VirtualClock {
  private t: number;
  private heap: Timer[] = [];
  private seq = 0;
  /** Event-loop turns taken (a cost figure of the simulation itself). */
  turns = 0;

  constructor(startMs: number) {
    this.t = startMs;
  }

  readonly now = (): number => this.t;

  readonly sleep = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => this.push({ at: this.t + Math.max(0, ms), seq: this.seq++, resolve }));

  /** Advances until `done()` holds; throws when nothing is left to wake and it still does not. */
  async run(done: () => boolean, quantumMs = 1): Promise<void> {
    for (;;) {
      // Every microtask queued so far (and those they queue) runs before setImmediate's callback.
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.turns += 1;
      if (done()) return;
      const first = this.pop();
      if (!first) throw new Error('simulation stalled: no timer pending and not done');
      const horizon = first.at + quantumMs;
      this.t = Math.max(this.t, first.at);
      first.resolve();
      while (this.heap.length > 0 && (this.heap[0] as Timer).at <= horizon) {
        const next = this.pop() as Timer;
        this.t = Math.max(this.t, next.at);
        next.resolve();
      }
    }
  }

  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  // A binary heap, sifting with a hole (no swaps): millions of timers go through it.
  private push(timer: Timer): void {
    const h = this.heap;
    let i = h.length;
    h.push(timer);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent] as Timer;
      if (!this.less(timer, p)) break;
      h[i] = p;
      i = parent;
    }
    h[i] = timer;
  }

  private pop(): Timer | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0] as Timer;
    const last = h.pop() as Timer;
    const n = h.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.less(h[r] as Timer, h[l] as Timer) ? r : l;
        if (!this.less(h[c] as Timer, last)) break;
        h[i] = h[c] as Timer;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
