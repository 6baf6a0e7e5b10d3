// One peer's events: the undelivered ones, and the last ones handed to a stream, kept so that a
// client whose stream broke can resume without loss. It stamps each event with the recipient's
// next sequence number (1, 2, 3… with no gaps for the mailbox's life) and the server time, and
// hands events to at most one live reader, one at a time, only when the reader asks: an event
// leaves the undelivered part when the consumer is ready to write it, so a slow stream keeps its
// backlog here, where the budgets can see it.
//
// The mailbox counts; the broker decides. `post` never refuses, so the caller chooses which events
// may be turned away, and what it holds is reported to a Tally shared by all mailboxes.
import type { SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import { withEncodedEvent } from "./encoded-event.ts";
import { outOfRange } from "./errors.ts";
import { toTimestamp } from "./timestamp.ts";

export type MailboxEvent = NonNullable<SubscribeResponse["event"]>;

/** What every mailbox of a broker holds together. */
export interface Tally {
  events: number;
  bytes: number;
}

interface Entry {
  readonly response: SubscribeResponse;
  readonly bytes: number;
  /** peer_joined or peer_left: counted against the room-event share while undelivered. */
  readonly room: boolean;
}

export class Mailbox {
  /** Retained entries first (handed to a stream), then undelivered ones, in sequence order. */
  private readonly entries: Entry[] = [];
  /** How many of `entries` were handed out. */
  private handed = 0;
  private held = 0;
  private pendingRoom = 0;
  private nextSequence = 1n;
  private reader: MailboxReader | undefined;

  /**
   * @param retain how many handed-out events to keep for a resume.
   * @param tally the broker-wide totals this mailbox adds to.
   * @param onIdle called when the live reader goes away without a replacement.
   */
  constructor(
    private readonly retain: number,
    private readonly tally: Tally = { events: 0, bytes: 0 },
    private readonly onIdle: () => void = () => {},
  ) {}

  /** Events held: undelivered plus retained. */
  get size(): number {
    return this.entries.length;
  }

  get undelivered(): number {
    return this.entries.length - this.handed;
  }

  get bytes(): number {
    return this.held;
  }

  /** Undelivered room events. */
  get pendingRoomEvents(): number {
    return this.pendingRoom;
  }

  get hasReader(): boolean {
    return this.reader !== undefined;
  }

  /**
   * Drops retained events, oldest first, until `events` more events and `bytes` more bytes fit in
   * `maxEvents` and `maxBytes`. Returns whether they fit (undelivered events are never dropped).
   */
  makeRoom(events: number, bytes: number, maxEvents: number, maxBytes: number): boolean {
    const fits = () => this.entries.length + events <= maxEvents && this.held + bytes <= maxBytes;
    while (!fits() && this.handed > 0) this.dropOldest();
    return fits();
  }

  /**
   * Queues an event of `bytes` bytes and returns its sequence number. `encoded`: the event's
   * encoding, if the caller has it (encoded-event.ts), so that it is not encoded again.
   */
  post(event: MailboxEvent, bytes: number, encoded?: Uint8Array): bigint {
    const sequence = this.nextSequence++;
    const room = event.$case === "peerJoined" || event.$case === "peerLeft";
    const response: SubscribeResponse = { sequence, serverTime: toTimestamp(new Date()), event };
    this.entries.push({ response: encoded ? withEncodedEvent(response, encoded) : response, bytes, room });
    this.count(1, bytes);
    if (room) this.pendingRoom++;
    this.reader?.wake();
    return sequence;
  }

  /**
   * Makes a new reader the only live one; the previous one ends with `replaced`. With `resumeAfter`
   * the reader starts after that sequence, replaying retained events; OUT_OF_RANGE (and the
   * previous reader kept) when that point is not held.
   */
  attach(replaced: Error, resumeAfter?: bigint): MailboxReader {
    if (resumeAfter !== undefined) this.rewind(resumeAfter);
    const previous = this.reader;
    const reader = new MailboxReader(this);
    this.reader = reader;
    previous?.end(replaced);
    return reader;
  }

  /** Ends the live reader (with `error`, or as done) and drops everything held. */
  close(error?: Error): void {
    const reader = this.reader;
    this.reader = undefined;
    while (this.entries.length > 0) this.dropOldest();
    reader?.end(error);
  }

  /** @internal the oldest undelivered event, if `reader` is still the live one; it is retained. */
  take(reader: MailboxReader): SubscribeResponse | undefined {
    if (reader !== this.reader || this.handed >= this.entries.length) return undefined;
    const entry = this.entries[this.handed++]!;
    if (entry.room) this.pendingRoom--;
    while (this.handed > this.retain) this.dropOldest();
    return entry.response;
  }

  /** @internal a reader ended. */
  detach(reader: MailboxReader): void {
    if (reader !== this.reader) return;
    this.reader = undefined;
    this.onIdle();
  }

  private rewind(resumeAfter: bigint): void {
    const last = this.nextSequence - 1n;
    if (resumeAfter > last) {
      throw outOfRange(`Cannot resume after sequence ${resumeAfter}: the last event issued is ${last}; register again`);
    }
    const oldest = this.entries[0]?.response.sequence ?? this.nextSequence;
    if (resumeAfter + 1n < oldest) {
      throw outOfRange(`Cannot resume after sequence ${resumeAfter}: events before ${oldest} are no longer held; register again`);
    }
    // Everything held becomes undelivered again; events up to the resume point were processed.
    for (let i = 0; i < this.handed; i++) if (this.entries[i]!.room) this.pendingRoom++;
    this.handed = 0;
    while (this.entries.length > 0 && this.entries[0]!.response.sequence <= resumeAfter) this.dropOldest();
  }

  private dropOldest(): void {
    const entry = this.entries.shift();
    if (!entry) return;
    if (this.handed > 0) this.handed--;
    else if (entry.room) this.pendingRoom--;
    this.count(-1, -entry.bytes);
  }

  private count(events: number, bytes: number): void {
    this.held += bytes;
    this.tally.events += events;
    this.tally.bytes += bytes;
  }
}

type Pending = {
  resolve: (result: IteratorResult<SubscribeResponse>) => void;
  reject: (err: Error) => void;
};

const DONE: IteratorResult<SubscribeResponse> = { value: undefined, done: true };

/** An async iterator over a mailbox that waits for events while none are queued. */
export class MailboxReader implements AsyncIterableIterator<SubscribeResponse> {
  private isEnded = false;
  private error: Error | undefined;
  private pending: Pending | undefined;
  private resolveEnded!: (error: Error | undefined) => void;
  /** Resolves when the reader ends, with the error it ended with. */
  readonly ended = new Promise<Error | undefined>((resolve) => {
    this.resolveEnded = resolve;
  });

  constructor(private readonly mailbox: Mailbox) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<SubscribeResponse>> {
    if (this.error) return Promise.reject(this.error);
    if (this.isEnded) return Promise.resolve(DONE);
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
    if (this.isEnded) return;
    this.isEnded = true;
    this.error = error;
    this.mailbox.detach(this);
    this.resolveEnded(error);
    const pending = this.pending;
    this.pending = undefined;
    if (!pending) return;
    if (error) pending.reject(error);
    else pending.resolve(DONE);
  }
}
