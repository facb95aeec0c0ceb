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

  private push(timer: Timer): void {
    const h = this.heap;
    h.push(timer);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i] as Timer, h[parent] as Timer)) break;
      [h[i], h[parent]] = [h[parent] as Timer, h[i] as Timer];
      i = parent;
    }
  }

  private pop(): Timer | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0] as Timer;
    const last = h.pop() as Timer;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l] as Timer, h[m] as Timer)) m = l;
        if (r < h.length && this.less(h[r] as Timer, h[m] as Timer)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m] as Timer, h[i] as Timer];
        i = m;
      }
    }
    return top;
  }
}
