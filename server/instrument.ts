// Watches every call at the gRPC layer, whatever service answers it: when it starts, each message
// it sends, and the status it ends with. Metrics and the log of refused calls are built on this,
// so the service handlers know nothing of them. It also keeps the open streaming calls, so a
// shutdown can end the ones no service ends itself (health Watch, reflection), and refuses a call
// whose request has not fully arrived in time (request-timeout.ts). One interceptor does it all:
// each one more is another layer of grpc-js objects every call and every message goes through.
import * as grpc from "@grpc/grpc-js";
import { RequestTimer } from "./request-timeout.ts";

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

  /** @param requestTimeoutMs how long a call's request may take to arrive. */
  constructor(
    private readonly observers: readonly CallObserver[],
    private readonly requestTimeoutMs: number,
  ) {}

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
    const timer = new RequestTimer(this.requestTimeoutMs, (code, details) => call.sendStatus({ code, details, metadata: null }));
    const responder: grpc.Responder = {
      start: (start) => {
        timer.start();
        start({
          onReceiveMessage: (message, receive) => {
            timer.stop();
            receive(message);
          },
          onCancel: () => {
            timer.stop();
            finish(grpc.status.CANCELLED, "Cancelled by the client");
          },
        });
      },
      sendMessage: (message, send) => {
        messagesSent += 1;
        for (const observer of this.observers) observer.sent?.(info, message);
        send(message);
      },
      sendStatus: (status, send) => {
        timer.stop();
        finish(status.code, status.details ?? "");
        send(status);
      },
    };
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
