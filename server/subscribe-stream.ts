// One open Subscribe call: copies a Subscription onto the gRPC stream, at the pace the client
// reads, and ends it exactly once.
//
// Backpressure: after write() returns false nothing more is taken from the subscription until the
// stream drains, so undelivered events stay in the mailbox and count against its limit.
// Cancellation: `cancelled`, `close` and `error` all close the subscription, which starts the
// peer's grace period in the broker.
import { status, type ServerWritableStream } from "@grpc/grpc-js";
import type { SubscribeRequest, SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import type { Subscription } from "./broker.ts";
import { SignalingError, toServiceError } from "./errors.ts";

export type SubscribeCall = ServerWritableStream<SubscribeRequest, SubscribeResponse>;

/** Why a stream ended, for the log. */
export type StreamEnd = "cancelled" | "left" | "replaced" | "shutdown" | "error";

export class SubscribeStream {
  private ended: StreamEnd | undefined;
  /** Resolves a pending wait for `drain` early when the stream ends. */
  private wake: (() => void) | undefined;

  constructor(
    private readonly call: SubscribeCall,
    private readonly subscription: Subscription,
    private readonly onUnexpected: (err: unknown) => void,
  ) {
    const clientGone = () => this.end("cancelled");
    call.on("cancelled", clientGone);
    call.on("close", clientGone);
    call.on("error", clientGone);
    // The client may have gone while the broker was opening the subscription.
    if (call.cancelled || call.destroyed) this.end("cancelled");
  }

  /** Writes `first`, then every event of the subscription; resolves when the stream has ended. */
  async run(first: SubscribeResponse): Promise<StreamEnd> {
    try {
      if (!this.ended) await this.write(first);
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
    this.subscription.close();
    this.wake?.();
    if (this.call.cancelled || this.call.destroyed) return;
    // grpc-js turns an emitted error into the call's status, after the writes already queued.
    if (err !== undefined) this.call.emit("error", toServiceError(err, this.onUnexpected));
    else this.call.end();
  }

  private async write(event: SubscribeResponse): Promise<void> {
    if (this.call.write(event)) return;
    await this.drained();
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
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

function endReason(err: unknown): StreamEnd {
  if (!(err instanceof SignalingError)) return "error";
  if (err.code === status.ABORTED) return "replaced";
  if (err.code === status.UNAVAILABLE) return "shutdown";
  return "error";
}
