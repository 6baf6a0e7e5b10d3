// One open Subscribe call: copies a Subscription onto the gRPC stream, at the pace the client
// reads, with a heartbeat while it is quiet, and ends it exactly once.
//
// Backpressure: after write() returns false nothing more is taken from the subscription until the
// stream drains, so undelivered events stay in the mailbox and count against its budgets. A stream
// that does not drain for `stallMs` belongs to a client that stopped reading: it is ended, and the
// peer's grace period starts.
// Ending at once: a stream blocked on flow control cannot deliver its status (the trailers wait
// behind the unread data), so when it must end (replaced, stalled, shutdown) it is also reset.
// Cancellation: `cancelled`, `close` and `error` all close the subscription, which starts the
// peer's grace period in the broker.
import { status, type ServerWritableStream } from "@grpc/grpc-js";
import type { SubscribeRequest, SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import type { Subscription } from "./broker.ts";
import { resourceExhausted, SignalingError, toServiceError } from "./errors.ts";
import { LIMIT_FLAGS } from "./limits.ts";
import { resetStream } from "./stream-reset.ts";
import { toTimestamp } from "./timestamp.ts";

export type SubscribeCall = ServerWritableStream<SubscribeRequest, SubscribeResponse>;

/** Why a stream ended, for the log. */
export type StreamEnd = "cancelled" | "left" | "replaced" | "shutdown" | "stalled" | "error";

export interface StreamTiming {
  /** A Heartbeat this often while the stream is open (0: none). */
  heartbeatMs: number;
  /** A stream that has not drained for this long is ended (0: never). */
  stallMs: number;
}

export class SubscribeStream {
  private ended: StreamEnd | undefined;
  /** Resolves a pending wait for `drain` early when the stream ends. */
  private wake: (() => void) | undefined;

  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly call: SubscribeCall,
    private readonly subscription: Subscription,
    private readonly onUnexpected: (err: unknown) => void,
    private readonly timing: StreamTiming = { heartbeatMs: 0, stallMs: 0 },
  ) {
    const clientGone = () => this.end("cancelled");
    call.on("cancelled", clientGone);
    call.on("close", clientGone);
    call.on("error", clientGone);
    // A replaced subscription must end its stream now, not when the stream next asks for an event.
    void subscription.ended.then((err) => err && this.end(endReason(err), err));
    // The client may have gone while the broker was opening the subscription.
    if (call.cancelled || call.destroyed) this.end("cancelled");
  }

  /** Writes `first`, then every event of the subscription; resolves when the stream has ended. */
  async run(first: SubscribeResponse): Promise<StreamEnd> {
    try {
      if (!this.ended) await this.write(first);
      this.startHeartbeat();
      for await (const event of this.subscription) {
        if (this.ended) break;
        await this.write(event);
      }
      // The subscription finished on its own: the peer left the room.
      this.end("left");
    } catch (err) {
      this.end(endReason(err), err);
    }
    return this.ended ?? "error";
  }

  /** Ends the stream with `err`'s status (OK when undefined). Only the first call counts. */
  end(reason: StreamEnd, err?: unknown): void {
    if (this.ended) return;
    this.ended = reason;
    clearInterval(this.heartbeat);
    this.subscription.close();
    const blocked = this.wake !== undefined;
    this.wake?.();
    if (this.call.cancelled || this.call.destroyed) return;
    // grpc-js turns an emitted error into the call's status, after the writes already queued.
    if (err !== undefined) this.call.emit("error", toServiceError(err, this.onUnexpected));
    else this.call.end();
    if (blocked) resetStream(this.call);
  }

  private startHeartbeat(): void {
    const { heartbeatMs } = this.timing;
    if (heartbeatMs <= 0 || this.ended) return;
    this.heartbeat = setInterval(() => {
      // A stream waiting for drain gains nothing from one more message in its buffer.
      if (this.ended || this.wake) return;
      this.call.write(heartbeatEvent(heartbeatMs));
    }, heartbeatMs);
    this.heartbeat.unref();
  }

  private async write(event: SubscribeResponse): Promise<void> {
    if (this.call.write(event)) return;
    await this.drained();
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const { stallMs } = this.timing;
      const stall =
        stallMs > 0
          ? setTimeout(() => {
              this.end("stalled", resourceExhausted(`Subscribe stream ended: the client read nothing for ${stallMs / 1000} s (3 × ${LIMIT_FLAGS.heartbeatMs})`));
            }, stallMs)
          : undefined;
      const done = () => {
        clearTimeout(stall);
        this.call.off("drain", done);
        this.call.off("close", done);
        this.wake = undefined;
        resolve();
      };
      this.call.on("drain", done);
      this.call.on("close", done);
      this.wake = done;
    });
  }
}

function heartbeatEvent(intervalMs: number): SubscribeResponse {
  return { sequence: 0n, serverTime: toTimestamp(new Date()), event: { $case: "heartbeat", value: { intervalMs } } };
}

function endReason(err: unknown): StreamEnd {
  if (!(err instanceof SignalingError)) return "error";
  if (err.code === status.ABORTED) return "replaced";
  if (err.code === status.UNAVAILABLE) return "shutdown";
  return "error";
}
