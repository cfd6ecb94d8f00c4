// Small statistics helpers: medians of repeats, percentiles of samples, a
// least-squares slope, and number formatting for the tables.

export function sorted(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** Percentile by linear interpolation between closest ranks (p in 0..100). NaN for no samples. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = sorted(xs);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo]! + (s[hi]! - s[lo]!) * (rank - lo);
}

/** Same as percentile(), for an array already sorted ascending. */
export function percentileSorted(s: ArrayLike<number>, p: number): number {
  if (s.length === 0) return Number.NaN;
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo]! + (s[hi]! - s[lo]!) * (rank - lo);
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

/** Least-squares slope of y over x. NaN with fewer than two distinct x. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = mean(points.map((p) => p.x));
  const my = mean(points.map((p) => p.y));
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

/** subject / baseline. */
export function ratio(subject: number, baseline: number): number {
  return baseline === 0 ? Number.NaN : subject / baseline;
}

export function fmt(x: number | undefined, digits = 2): string {
  if (x === undefined || Number.isNaN(x)) return '-';
  if (!Number.isFinite(x)) return String(x);
  return x.toFixed(digits);
}

/** Integers with thousands separators (requests/s). */
export function fmtInt(x: number | undefined): string {
  if (x === undefined || Number.isNaN(x)) return '-';
  return Math.round(x).toLocaleString('en-US');
}

export function fmtRatio(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? '-' : `${x.toFixed(2)}x`;
}

/** Signed relative difference, e.g. +3.1%. */
export function fmtPct(x: number | undefined): string {
  if (x === undefined || Number.isNaN(x)) return '-';
  const p = x * 100;
  return `${p >= 0 ? '+' : ''}${p.toFixed(1)}%`;
}

export const mb = (bytes: number) => bytes / (1024 * 1024);
