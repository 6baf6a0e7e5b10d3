// The server process's signals. SIGTERM and SIGINT ask for an orderly stop (the caller drains);
// another one during the drain means "now". SIGHUP reloads the TLS files instead of killing the
// process, which is Node's default for it.
import { logLine, type Log } from "./log.ts";

export type StopSignal = "SIGTERM" | "SIGINT";

/**
 * Ctrl-C under `npm run` arrives twice: from the terminal to the whole process group, and again
 * from npm, which forwards it. A repeat this soon is the same request, not an impatient operator.
 */
const SAME_REQUEST_MS = 1_000;

export interface SignalOptions {
  onHangup: () => void;
  log: Log;
}

/** Resolves with the first stop signal; a later one (not a repeat) exits the process with 1. */
export function nextStopSignal({ onHangup, log }: SignalOptions): Promise<StopSignal> {
  process.on("SIGHUP", onHangup);
  return new Promise((resolve) => {
    let firstAt: number | undefined;
    const onSignal = (signal: StopSignal) => {
      if (firstAt === undefined) {
        firstAt = Date.now();
        resolve(signal);
        return;
      }
      if (Date.now() - firstAt < SAME_REQUEST_MS) return;
      log(logLine("stop-forced", { signal }));
      process.exit(1);
    };
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
  });
}
