// Summaries of samples: percentiles by linear interpolation between closest ranks, so p99 of a
// few thousand samples does not jump from one sample to the next as the count changes.

export interface Spread {
  readonly count: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** The q-th quantile (0 ≤ q ≤ 1) of samples already sorted ascending. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new Error("Cannot take a quantile of no samples");
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.ceil(position);
  const low = sorted[below]!;
  return low + (sorted[above]! - low) * (position - below);
}

export function spread(samples: readonly number[]): Spread {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean: sorted.reduce((sum, x) => sum + x, 0) / sorted.length,
  };
}

export function median(samples: readonly number[]): number {
  return quantile([...samples].sort((a, b) => a - b), 0.5);
}

/** Milliseconds since `start` (a performance.now() reading), with sub-microsecond resolution. */
export function elapsedMs(start: number): number {
  return performance.now() - start;
}
