// One open subscription on a Redis-backed mailbox. Events reach it two ways: pushed on the
// session's channel (the fast path: pub/sub carries the whole event, ~0.1 ms) and read from the
// session's stream (XRANGE from the next sequence it wants). Pub/sub alone may lose messages (a
// reconnect); the stream alone would need a blocking connection per subscriber. Together: the
// subscription hands out exactly sequence `next`, next+1, … from whichever arrived first, drops
// what it has already handed out, and reads the stream whenever it sees a gap or (re)connects. So
// every event arrives once, in order, whatever pub/sub does.
import type { SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import type { PeerRecord, Subscription } from "./broker.ts";

type Result = IteratorResult<SubscribeResponse>;
const DONE: Result = { value: undefined, done: true };

export interface SubscriptionSource {
  /** Reads held events from sequence `from` on, at most `count`. */
  read(from: number, count: number): Promise<{ sequence: number; event: SubscribeResponse }[]>;
  /** Events up to `sequence` were handed out (best effort: a failure is retried by the next ack). */
  ack(sequence: number): void;
  /** The subscription ended; `released`: start the grace period (not when replaced or gone). */
  ended(released: boolean): void;
}

const READ_BATCH = 256;

export class RedisSubscription implements Subscription, AsyncIterableIterator<SubscribeResponse> {
  readonly ended: Promise<Error | undefined>;
  private resolveEnded!: (error: Error | undefined) => void;
  private readonly buffer = new Map<number, SubscribeResponse>();
  private pending: { resolve: (r: Result) => void; reject: (e: Error) => void } | undefined;
  private finished = false;
  private error: Error | undefined;
  private reading = false;
  private readAgain = false;

  constructor(
    readonly peerId: string,
    readonly epoch: number,
    /** The next sequence to hand out. */
    private nextSequence: number,
    readonly others: readonly PeerRecord[],
    private readonly source: SubscriptionSource,
  ) {
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<Result> {
    if (this.error) return Promise.reject(this.error);
    if (this.finished) return Promise.resolve(DONE);
    const event = this.take();
    if (event) return Promise.resolve({ value: event, done: false });
    return new Promise((resolve, reject) => (this.pending = { resolve, reject }));
  }

  return(): Promise<Result> {
    this.close();
    return Promise.resolve(DONE);
  }

  close(): void {
    this.finish(undefined, true);
  }

  /** An event from the channel. */
  push(sequence: number, event: SubscribeResponse): void {
    if (this.finished || sequence < this.nextSequence) return;
    this.buffer.set(sequence, event);
    if (!this.buffer.has(this.nextSequence)) this.catchUp();
    this.wake();
  }

  /** Reads the stream for anything the channel did not bring (a gap, a start, a reconnect). */
  catchUp(): void {
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = true;
    void this.readLoop();
  }

  /** The peer left or expired: the subscription ends (done). */
  gone(): void {
    this.finish(undefined, false);
  }

  /** A newer subscription took over (ABORTED), or the broker closed (UNAVAILABLE). */
  fail(error: Error): void {
    this.finish(error, false);
  }

  /** Re-sends the last ack (after Redis came back). */
  reack(): void {
    if (this.nextSequence > 1) this.source.ack(this.nextSequence - 1);
  }

  private async readLoop(): Promise<void> {
    try {
      do {
        this.readAgain = false;
        let from = this.nextSequence;
        while (this.buffer.has(from)) from++;
        const events = await this.source.read(from, READ_BATCH);
        for (const { sequence, event } of events) if (sequence >= this.nextSequence) this.buffer.set(sequence, event);
        if (events.length === READ_BATCH) this.readAgain = true;
        this.wake();
      } while (this.readAgain && !this.finished);
    } catch {
      // Redis is away: the next push or reconnect reads again.
    } finally {
      this.reading = false;
    }
  }

  private take(): SubscribeResponse | undefined {
    const event = this.buffer.get(this.nextSequence);
    if (!event) return undefined;
    this.buffer.delete(this.nextSequence);
    this.source.ack(this.nextSequence);
    this.nextSequence++;
    return event;
  }

  private wake(): void {
    if (!this.pending) return;
    const event = this.take();
    if (!event) return;
    const { resolve } = this.pending;
    this.pending = undefined;
    resolve({ value: event, done: false });
  }

  private finish(error: Error | undefined, released: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.error = error;
    this.buffer.clear();
    this.source.ended(released);
    this.resolveEnded(error);
    const pending = this.pending;
    this.pending = undefined;
    if (!pending) return;
    if (error) pending.reject(error);
    else pending.resolve(DONE);
  }
}
