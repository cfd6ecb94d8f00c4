// What kubectl bg abort prints before it patches: the idle colour's images, template and
// replicas, before and after.
import type { AbortPlan } from '../../../src/core/abort-plan.ts';
import type { AppView } from '../../../src/core/app.ts';
import { imagesOf, templateHash } from '../../../src/core/template.ts';
import { colourStyle, type Painter } from './paint.ts';
import { columns } from './table.ts';

export function describeAbort(view: AppView, plan: Extract<AbortPlan, { ok: true }>, f: { dryRun: boolean; scaleDown: boolean }, p: Painter): string {
  const idleC = p.paint(colourStyle(view.idle), view.idle!);
  const liveC = p.paint(colourStyle(view.live), view.live!);
  const rows = [
    ['images:', `${imagesOf(plan.idle.spec?.template).join(' ')} -> ${imagesOf(plan.template).join(' ')}`],
    ['template:', `${templateHash(plan.idle.spec?.template, view.slotKey)} -> ${templateHash(plan.template, view.slotKey)} (the live version, ${liveC})`],
  ];
  if (f.scaleDown) rows.push(['replicas:', `${plan.idle.spec?.replicas ?? 1} -> 0`]);
  return (
    `abort the rollout of ${plan.idle.metadata.name ?? ''} (${idleC}, idle) in namespace ${view.namespace}${f.dryRun ? ' (dry run)' : ''}\n` +
    columns(rows, '  ')
  );
}
