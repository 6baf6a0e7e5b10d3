// Watches every call at the gRPC layer, whatever service answers it: when it starts, each message
// it sends, and the status it ends with. Metrics and the log of refused calls are built on this,
// so the service handlers know nothing of them. It also keeps the open streaming calls, so a
// shutdown can end the ones no service ends itself (health Watch, reflection).
import * as grpc from "@grpc/grpc-js";

export interface CallInfo {
  /** "icetest.signaling.v1.SignalingService" */
  readonly service: string;
  /** "SendMessage" */
  readonly method: string;
  readonly streaming: boolean;
  /** The client's address, as grpc-js names it ("ipv4:127.0.0.1:50000"). */
  readonly peer: string;
}

export interface CallEnd {
  readonly code: grpc.status;
  readonly details: string;
  readonly seconds: number;
  /** Response messages sent before the end. */
  readonly messagesSent: number;
}

export interface CallObserver {
  started?(call: CallInfo): void;
  sent?(call: CallInfo, message: unknown): void;
  /** Once per call: its status, or CANCELLED when the client went away first. */
  finished?(call: CallInfo, end: CallEnd): void;
}

export class CallTracker {
  private readonly openStreams = new Set<grpc.ServerInterceptingCall>();

  constructor(private readonly observers: readonly CallObserver[]) {}

  readonly interceptor: grpc.ServerInterceptor = (method, next) => {
    const [service = "", name = ""] = method.path.slice(1).split("/");
    const info: CallInfo = { service, method: name, streaming: method.requestStream || method.responseStream, peer: next.getPeer() };
    const startedAt = process.hrtime.bigint();
    let messagesSent = 0;
    let finished = false;
    const finish = (code: grpc.status, details: string) => {
      if (finished) return;
      finished = true;
      this.openStreams.delete(call);
      const end = { code, details, seconds: Number(process.hrtime.bigint() - startedAt) / 1e9, messagesSent };
      for (const observer of this.observers) observer.finished?.(info, end);
    };
    const responder = new grpc.ResponderBuilder()
      .withStart((start) => start(new grpc.ServerListenerBuilder().withOnCancel(() => finish(grpc.status.CANCELLED, "Cancelled by the client")).build()))
      .withSendMessage((message, send) => {
        messagesSent += 1;
        for (const observer of this.observers) observer.sent?.(info, message);
        send(message);
      })
      .withSendStatus((status, send) => {
        finish(status.code, status.details ?? "");
        send(status);
      })
      .build();
    const call = new grpc.ServerInterceptingCall(next, responder);
    if (info.streaming) this.openStreams.add(call);
    for (const observer of this.observers) observer.started?.(info);
    return call;
  };

  /** Ends every streaming call still open with `code`; services that end their own go first. */
  endStreams(code: grpc.status, details: string): void {
    for (const call of [...this.openStreams]) call.sendStatus({ code, details, metadata: new grpc.Metadata() });
  }
}
