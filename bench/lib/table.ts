// Plain-text tables: a header, rows, columns padded to the widest cell.
// Columns whose cells are numbers (or ratios, percentages) are right-aligned.

export type Cell = string | number;

const numeric = (s: string) => /^[-+]?[\d,.]+(x|%| ms| s| MB| KB)?$/.test(s) || s === '-';

export function table(header: readonly string[], rows: readonly (readonly Cell[])[], indent = '  '): string {
  const all = [header, ...rows].map((r) => r.map(String));
  const cols = Math.max(...all.map((r) => r.length));
  const widths = Array.from({ length: cols }, (_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const right = Array.from({ length: cols }, (_, i) => {
    const cells = all
      .slice(1)
      .map((r) => r[i] ?? '')
      .filter((c) => c !== '');
    return i > 0 && cells.length > 0 && cells.every(numeric);
  });
  const line = (r: string[]) =>
    indent +
    Array.from({ length: cols }, (_, i) => {
      const c = r[i] ?? '';
      return right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!);
    })
      .join('  ')
      .trimEnd();
  return [line(all[0]!), indent + widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)].join('\n');
}
