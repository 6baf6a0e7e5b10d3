// A call whose request has not fully arrived after `ms` is refused (half-sent calls would
// otherwise hold an HTTP/2 stream, and the connection's keepalive keeps answering for them).
// grpc-js calls a handler only once the request is complete, so this is a server interceptor.
import { ServerInterceptingCall, ServerListenerBuilder, status, type ServerInterceptor } from "@grpc/grpc-js";
import { LIMIT_FLAGS } from "./limits.ts";

export function requestTimeout(ms: number): ServerInterceptor {
  return (_method, call) => {
    let timer: NodeJS.Timeout | undefined;
    const stop = () => clearTimeout(timer);
    const intercepted: ServerInterceptingCall = new ServerInterceptingCall(call, {
      start: (next) => {
        timer = setTimeout(() => {
          const details = `The request did not arrive completely within ${ms / 1000} s (${LIMIT_FLAGS.requestTimeoutMs})`;
          intercepted.sendStatus({ code: status.RESOURCE_EXHAUSTED, details, metadata: null });
        }, ms);
        timer.unref();
        next(
          new ServerListenerBuilder()
            .withOnReceiveMessage((message, nextMessage) => {
              stop();
              nextMessage(message);
            })
            .withOnCancel(stop)
            .build(),
        );
      },
      sendStatus: (sent, next) => {
        stop();
        next(sent);
      },
    });
    return intercepted;
  };
}
