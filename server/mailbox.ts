// One peer's queue of undelivered events. It stamps each event with the recipient's next sequence
// number (1, 2, 3… with no gaps for the mailbox's life) and the server time, and hands events to
// at most one live reader, one at a time, only when the reader asks: an event leaves the queue
// when the consumer is ready to write it, so a slow stream keeps its backlog here, where the queue
// limit can see it.
import { SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import { toTimestamp } from "./timestamp.ts";

export type MailboxEvent = NonNullable<SubscribeResponse["event"]>;

export class Mailbox {
  private readonly queue: SubscribeResponse[] = [];
  private nextSequence = 1n;
  private reader: MailboxReader | undefined;

  /**
   * @param limit how many undelivered events `isFull` allows; `post` itself never refuses, so the
   *   caller chooses which events may be turned away.
   * @param onIdle called when the live reader goes away without a replacement.
   */
  constructor(
    readonly limit: number,
    private readonly onIdle: () => void = () => {},
  ) {}

  get size(): number {
    return this.queue.length;
  }

  /** The queue's wire size; counted when asked (by a metrics scrape), not on every post. */
  get queuedBytes(): number {
    return this.queue.reduce((bytes, event) => bytes + SubscribeResponse.encode(event).finish().length, 0);
  }

  get isFull(): boolean {
    return this.queue.length >= this.limit;
  }

  get hasReader(): boolean {
    return this.reader !== undefined;
  }

  /** Queues an event and returns its sequence number. */
  post(event: MailboxEvent, now: Date = new Date()): bigint {
    const sequence = this.nextSequence++;
    this.queue.push({ sequence, serverTime: toTimestamp(now), event });
    this.reader?.wake();
    return sequence;
  }

  /** Makes a new reader the only live one; the previous one ends with `replaced`. */
  attach(replaced: Error): MailboxReader {
    const previous = this.reader;
    const reader = new MailboxReader(this);
    this.reader = reader;
    previous?.end(replaced);
    return reader;
  }

  /** Ends the live reader (with `error`, or as done) and drops the queue. */
  close(error?: Error): void {
    const reader = this.reader;
    this.reader = undefined;
    this.queue.length = 0;
    reader?.end(error);
  }

  /** @internal the oldest event, if `reader` is still the live one. */
  take(reader: MailboxReader): SubscribeResponse | undefined {
    return reader === this.reader ? this.queue.shift() : undefined;
  }

  /** @internal a reader ended. */
  detach(reader: MailboxReader): void {
    if (reader !== this.reader) return;
    this.reader = undefined;
    this.onIdle();
  }
}

type Pending = {
  resolve: (result: IteratorResult<SubscribeResponse>) => void;
  reject: (err: Error) => void;
};

const DONE: IteratorResult<SubscribeResponse> = { value: undefined, done: true };

/** An async iterator over a mailbox that waits for events while none are queued. */
export class MailboxReader implements AsyncIterableIterator<SubscribeResponse> {
  private ended = false;
  private error: Error | undefined;
  private pending: Pending | undefined;

  constructor(private readonly mailbox: Mailbox) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<SubscribeResponse>> {
    if (this.error) return Promise.reject(this.error);
    if (this.ended) return Promise.resolve(DONE);
    const event = this.mailbox.take(this);
    if (event) return Promise.resolve({ value: event, done: false });
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
    });
  }

  /** Ends iteration as done; what a `for await` calls on `break`. */
  return(): Promise<IteratorResult<SubscribeResponse>> {
    this.end();
    return Promise.resolve(DONE);
  }

  /** @internal an event was posted: hand it over if someone is waiting. */
  wake(): void {
    if (!this.pending) return;
    const event = this.mailbox.take(this);
    if (!event) return;
    const { resolve } = this.pending;
    this.pending = undefined;
    resolve({ value: event, done: false });
  }

  /** Ends the reader once: a waiting `next()` rejects with `error`, or resolves done. */
  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.mailbox.detach(this);
    const pending = this.pending;
    this.pending = undefined;
    if (!pending) return;
    if (error) pending.reject(error);
    else pending.resolve(DONE);
  }
}
