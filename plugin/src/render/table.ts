// kubectl-style tables: upper-case headers, columns separated by three spaces,
// no trailing blanks. Cells may carry ANSI colour; widths count visible characters.
import { visibleLength } from './paint.ts';

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  return columns([headers, ...rows]);
}

/** Rows aligned in columns (three spaces apart), with no header. */
export function columns(all: readonly (readonly string[])[], indent = ''): string {
  if (all.length === 0) return '';
  const headers = all[0]!;
  const widths = headers.map((_, i) => Math.max(...all.map((r) => visibleLength(r[i] ?? ''))));
  return all
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visibleLength(cell) + 3)))
        .join('')
        .trimEnd(),
    )
    .map((l) => `${indent}${l}\n`)
    .join('');
}

/** "Key:   value" lines, values aligned; an empty key continues the previous field. */
export function fields(pairs: readonly (readonly [string, string])[]): string {
  const w = Math.max(...pairs.map(([k]) => k.length)) + 2;
  return pairs.map(([k, v]) => `${(k ? `${k}:` : '').padEnd(w)}${v}`.trimEnd() + '\n').join('');
}
