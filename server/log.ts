// Log events as values: an event name, a level and fields. The server's code builds them with
// logLine(); where they go (JSON lines through pino, or readable lines on a terminal) is decided
// once, in log-sink.ts. Readable lines look like
// `2026-11-24T13:55:00.123Z info send room=lab from=alice to=bob kind=offer seq=3`; values a client
// chose are quoted when needed, so a crafted name cannot forge a second line.

export type LogLevel = "debug" | "info" | "warn" | "error";

export type LogFields = Record<string, string | number | bigint | boolean | undefined>;

export interface LogEntry {
  readonly time: Date;
  readonly level: LogLevel;
  readonly event: string;
  readonly fields: LogFields;
  /** A sentence for people, printed instead of the event name (JSON keeps both). */
  readonly message?: string;
}

export type Log = (entry: LogEntry) => void;

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** Events that are not routine; everything else is info. */
const EVENT_LEVELS: Record<string, LogLevel> = {
  "internal-error": "error",
  "shutdown-forced": "warn",
  "stun-error": "warn",
  "tls-reload-failed": "warn",
  "stun-drop": "debug",
};

export function logLine(event: string, fields: LogFields, now: Date = new Date()): LogEntry {
  return { time: now, level: EVENT_LEVELS[event] ?? "info", event, fields };
}

/** An entry whose readable form is `message` rather than the event and its fields. */
export function logMessage(event: string, message: string, fields: LogFields = {}, level: LogLevel = "info"): LogEntry {
  return { time: new Date(), level, event, fields, message };
}

export function withLevel(entry: LogEntry, level: LogLevel): LogEntry {
  return { ...entry, level };
}

const BARE_VALUE = /^[\w.:\/@\[\]+-]+$/;

/** The readable form: one line, no newline at the end. */
export function formatText(entry: LogEntry): string {
  const parts = [entry.time.toISOString(), entry.level];
  if (entry.message !== undefined) return [...parts, entry.message].join(" ");
  parts.push(entry.event);
  for (const [key, value] of Object.entries(entry.fields)) {
    if (value === undefined) continue;
    parts.push(`${key}=${formatValue(String(value))}`);
  }
  return parts.join(" ");
}

function formatValue(value: string): string {
  return BARE_VALUE.test(value) ? value : JSON.stringify(value);
}
