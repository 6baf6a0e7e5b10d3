// One readable line per event: `2026-11-24T13:55:00.123Z send room=lab from=alice to=bob kind=offer seq=3`.
// Values a client chose are quoted when needed, so a crafted name cannot forge a second line.

export type Log = (line: string) => void;

export type LogFields = Record<string, string | number | bigint | undefined>;

const BARE_VALUE = /^[\w.:\/@\[\]+-]+$/;

export function logLine(event: string, fields: LogFields, now: Date = new Date()): string {
  const parts = [now.toISOString(), event];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`${key}=${formatValue(String(value))}`);
  }
  return parts.join(" ");
}

function formatValue(value: string): string {
  return BARE_VALUE.test(value) ? value : JSON.stringify(value);
}
