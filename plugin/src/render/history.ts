// kubectl bg history's table: one row a switch or rollback, oldest first.
import type { SwitchRecord } from '../../../src/core/history.ts';
import { colourStyle, type Painter } from './paint.ts';
import { table } from './table.ts';
import { relative } from './time.ts';

export function renderHistory(items: readonly SwitchRecord[], p: Painter, now: Date, wide = false): string {
  const c = (x: string) => p.paint(colourStyle(x), x);
  // Why, when any record says (a rollback after a failed post-switch check, say).
  const reasons = items.some((r) => r.reason);
  return table(
    ['#', 'KIND', 'FROM', 'TO', 'AGE', 'BY', 'IMAGES', ...(wide ? ['AT', 'FROM TEMPLATE', 'TO TEMPLATE'] : []), ...(reasons ? ['REASON'] : [])],
    items.map((r, i) => [
      String(i + 1),
      r.kind + (r.forced ? ' (forced)' : '') + (r.breakGlass ? ' (break-glass)' : ''),
      c(r.from),
      c(r.to),
      relative(r.at, now).replace(/ ago$/, ''),
      r.by ?? '<unknown>',
      (r.images ?? []).join(' ') || '<none>',
      ...(wide ? [r.at, r.fromTemplate ?? '<none>', r.toTemplate ?? '<none>'] : []),
      ...(reasons ? [r.reason ?? ''] : []),
    ]),
  );
}
