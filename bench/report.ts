// What a benchmark returns, and the two ways it is shown: a table for people, one JSON object for
// machines. Every number of ours sits next to the baselines measured in the same run, with the
// ratio ours/baseline: absolute numbers move between machines, ratios much less.

import type { StartupTax } from "./startup-tax.ts";

export interface Baseline {
  /** What was measured instead, e.g. "raw unary echo". */
  readonly name: string;
  readonly value: number;
}

export interface Measurement {
  /** e.g. "p50 send→arrival". */
  readonly metric: string;
  readonly unit: string;
  readonly ours: number;
  readonly baselines: readonly Baseline[];
  /** Anything else worth a glance, e.g. "min 812 / max 1034". */
  readonly detail?: string;
}

export interface BenchResult {
  readonly name: string;
  /** What was measured and how, in one line. */
  readonly setup: string;
  readonly measurements: readonly Measurement[];
  /** Observations printed under the table. */
  readonly notes: readonly string[];
  readonly seconds: number;
}

export function ratio(ours: number, baseline: number): number {
  return ours / baseline;
}

/** Numbers with about three significant digits, without exponent notation. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  const digits = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3;
  return value.toFixed(digits);
}

function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : "—";
}

export function renderTable(results: readonly BenchResult[]): string {
  const header = ["metric", "ours", "baseline", "", "ratio"];
  const out: string[] = [];
  for (const result of results) {
    // A row is table cells, or a free line (a detail) that does not widen the columns.
    const rows: (string[] | string)[] = [];
    for (const m of result.measurements) {
      m.baselines.forEach((b, i) =>
        rows.push([
          i === 0 ? m.metric : "",
          i === 0 ? `${formatNumber(m.ours)} ${m.unit}` : "",
          b.name,
          `${formatNumber(b.value)} ${m.unit}`,
          formatRatio(ratio(m.ours, b.value)),
        ]),
      );
      if (m.baselines.length === 0) rows.push([m.metric, `${formatNumber(m.ours)} ${m.unit}`, "", "", ""]);
      if (m.detail) rows.push(`    ${m.detail}`);
    }
    const cells = rows.filter((r): r is string[] => typeof r !== "string");
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
    const line = (row: readonly string[]) =>
      row
        .map((cell, i) => (i === 1 || i === 3 || i === 4 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd();
    out.push(`${result.name} (${result.seconds.toFixed(1)} s): ${result.setup}`);
    out.push(`  ${line(header)}`);
    out.push(`  ${line(widths.map((w) => "─".repeat(w)))}`);
    for (const row of rows) out.push(typeof row === "string" ? row : `  ${line(row)}`);
    for (const note of result.notes) out.push(`  · ${note}`);
    out.push("");
  }
  return out.join("\n");
}

export function toJson(results: readonly BenchResult[], context: Record<string, unknown>): string {
  return JSON.stringify({
    ...context,
    benchmarks: Object.fromEntries(
      results.map((r) => [
        r.name,
        {
          setup: r.setup,
          seconds: round(r.seconds),
          measurements: r.measurements.map((m) => ({
            metric: m.metric,
            unit: m.unit,
            ours: round(m.ours),
            baselines: m.baselines.map((b) => ({ name: b.name, value: round(b.value), ratio: round(ratio(m.ours, b.value)) })),
            ...(m.detail ? { detail: m.detail } : {}),
          })),
          notes: r.notes,
        },
      ]),
    ),
  });
}

function round(value: number): number {
  return Number.isFinite(value) ? Number(value.toPrecision(4)) : value;
}

export interface BenchOptions {
  /** Repetitions for benchmarks that count runs rather than operations (peer-connect). */
  readonly runs: number;
  /** Progress for the person waiting; never part of the results. */
  readonly progress: (line: string) => void;
  /** Variables taken out of the environment because they slow every Node start-up (startup-tax.ts). */
  readonly setAside: readonly StartupTax[];
}

export interface Benchmark {
  readonly name: string;
  run(options: BenchOptions): Promise<BenchResult>;
}
