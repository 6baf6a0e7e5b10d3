// A call whose request has not fully arrived after `ms` is refused (half-sent calls would
// otherwise hold an HTTP/2 stream, and the connection's keepalive keeps answering for them).
// grpc-js calls a handler only once the request is complete, so the interceptor (instrument.ts)
// runs this timer: started with the call, stopped by the request, a cancel or the call's status.
import { status } from "@grpc/grpc-js";
import { LIMIT_FLAGS } from "./limits.ts";

export class RequestTimer {
  private timer: NodeJS.Timeout | undefined;

  /** @param refuse ends the call with that status. */
  constructor(
    private readonly ms: number,
    private readonly refuse: (code: status, details: string) => void,
  ) {}

  start(): void {
    this.timer = setTimeout(() => {
      const details = `The request did not arrive completely within ${this.ms / 1000} s (${LIMIT_FLAGS.requestTimeoutMs})`;
      this.refuse(status.RESOURCE_EXHAUSTED, details);
    }, this.ms);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
