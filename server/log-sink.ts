// Where the server's log entries go: JSON lines through pino for collectors (the default when
// stdout is not a terminal), or readable lines for a person at a terminal.
//
// Both write through one asynchronous SonicBoom, so a slow reader of stdout never blocks the
// server; flush() writes what is still buffered synchronously (retrying while the pipe is full),
// and runs on process exit too, so the last lines of a shutdown are never lost.
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

export interface LogSink {
  log: Log;
  /** Writes every buffered line before returning. */
  flush(): void;
}

export function createLogSink(options: LogSinkOptions): LogSink {
  const destination = pino.destination({ fd: options.fd ?? 1, sync: false });
  const minimum = LOG_LEVELS.indexOf(options.level);
  const write = options.format === "json" ? jsonWriter(destination, options.level) : (entry: LogEntry) => destination.write(`${formatText(entry)}\n`);
  const flush = () => {
    try {
      destination.flushSync();
    } catch {
      // Nothing buffered yet ("not ready"), or stdout is gone: nothing left to save.
    }
  };
  process.once("exit", flush);
  return {
    log: (entry) => {
      if (LOG_LEVELS.indexOf(entry.level) >= minimum) write(entry);
    },
    flush,
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
