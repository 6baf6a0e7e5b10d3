// Refused calls in the log: each call that ends with an error before sending anything, with its
// status and message, so an operator sees who is turned away and why. Streams that end later are
// logged by the service with their reason; CANCELLED is the client's own doing.
import { status } from "@grpc/grpc-js";
import type { CallObserver } from "./instrument.ts";
import { logLine, type Log } from "./log.ts";

export function logRefusals(log: Log): CallObserver {
  return {
    finished: (call, end) => {
      if (end.code === status.OK || end.code === status.CANCELLED || end.messagesSent > 0) return;
      log(logLine("refused", { method: call.method, code: status[end.code] ?? end.code, details: end.details, from: call.peer }));
    },
  };
}
