// Round trips over the data channel. Both peers send N pings, one after the other, and answer every
// ping of the other side; each is finished when its N pongs are back and the other side said it is
// done (on the channel, or with a Bye through signaling, whichever arrives first). Closing earlier
// could drop the other side's last pong, since werift may discard data still queued on close.
import { deferred } from "./deferred.ts";

/** What goes over the channel, as JSON text. */
export type ChannelMessage =
  | { type: "ping"; seq: number }
  | { type: "pong"; seq: number }
  | { type: "done" };

export interface Channel {
  send(data: string): void;
}

export interface RttStats {
  readonly min: number;
  readonly avg: number;
  readonly max: number;
  readonly samples: readonly number[];
}

export interface PingPongEvents {
  onRoundTrip(seq: number, rttMs: number): void;
  onUnexpected(text: string): void;
}

export class PingPong {
  private readonly rtts: number[] = [];
  private readonly allPongs = deferred<void>();
  private readonly peerDone = deferred<void>();
  private pending: { seq: number; sentAt: number } | undefined;
  sent = 0;
  received = 0;

  constructor(
    private readonly channel: Channel,
    private readonly count: number,
    private readonly events: PingPongEvents,
  ) {}

  get pongs(): number {
    return this.rtts.length;
  }

  /** Resolves when our pings are answered and the other side is done with us. */
  async run(): Promise<void> {
    this.sendNextPing();
    await this.allPongs.promise;
    this.post({ type: "done" });
    await this.peerDone.promise;
  }

  /** The other side said goodbye through signaling: it needs nothing more from us. */
  peerFinished(): void {
    this.peerDone.resolve();
  }

  stats(): RttStats | undefined {
    if (this.rtts.length === 0) return undefined;
    const sum = this.rtts.reduce((a, b) => a + b, 0);
    return { min: Math.min(...this.rtts), avg: round(sum / this.rtts.length), max: Math.max(...this.rtts), samples: [...this.rtts] };
  }

  receive(data: string | Uint8Array): void {
    this.received += 1;
    const message = parse(data);
    if (!message) {
      this.events.onUnexpected(typeof data === "string" ? data : `${data.byteLength} bytes of binary`);
      return;
    }
    if (message.type === "ping") this.post({ type: "pong", seq: message.seq });
    else if (message.type === "pong") this.onPong(message.seq);
    else this.peerDone.resolve();
  }

  private onPong(seq: number): void {
    if (!this.pending || this.pending.seq !== seq) return;
    const rtt = round(performance.now() - this.pending.sentAt);
    this.pending = undefined;
    this.rtts.push(rtt);
    this.events.onRoundTrip(seq, rtt);
    this.sendNextPing();
  }

  private sendNextPing(): void {
    if (this.rtts.length >= this.count) {
      this.allPongs.resolve();
      return;
    }
    const seq = this.rtts.length + 1;
    this.pending = { seq, sentAt: performance.now() };
    this.post({ type: "ping", seq });
  }

  private post(message: ChannelMessage): void {
    this.sent += 1;
    this.channel.send(JSON.stringify(message));
  }
}

function parse(data: string | Uint8Array): ChannelMessage | undefined {
  if (typeof data !== "string") return undefined;
  try {
    const value = JSON.parse(data) as Partial<ChannelMessage>;
    if ((value.type === "ping" || value.type === "pong") && Number.isInteger((value as { seq?: unknown }).seq)) {
      return value as ChannelMessage;
    }
    return value.type === "done" ? { type: "done" } : undefined;
  } catch {
    return undefined;
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
