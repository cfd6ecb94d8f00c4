// What kubectl bg switch and rollback print about a plan: the changes, one line each, and the
// colours before and after.
import type { AppView } from '../../../src/core/app.ts';
import { availabilityOf } from '../../../src/core/availability.ts';
import type { Deployment } from '../../../src/core/k8s-types.ts';
import { type Colour, LIVE_LABEL, SCALE_DOWN_AT_ANNOTATION } from '../../../src/core/labels.ts';
import type { SwitchPlan } from '../../../src/core/switch-plan.ts';
import { imagesOf } from '../../../src/core/template.ts';
import { colourStyle, type Painter } from './paint.ts';
import { columns } from './table.ts';
import { humanDuration } from './time.ts';

export function paintColour(p: Painter, c: Colour): string {
  return p.paint(colourStyle(c), c);
}

function liveLabelOf(d: Deployment | undefined): string {
  return d?.metadata.labels?.[LIVE_LABEL] ?? '<none>';
}

/** The changes a plan makes, one line each. */
export function describePlan(view: AppView, plan: SwitchPlan, p: Painter, now: Date): string {
  const key = view.slotKey;
  const target = view.deployments[plan.to];
  const current = view.deployments[plan.from];
  const rows: string[][] = [];
  if (target?.metadata.name) rows.push([`Deployment/${target.metadata.name}`, `label ${LIVE_LABEL}: ${liveLabelOf(target)} -> true`]);
  rows.push([`Service/${plan.activeService.name}`, `selector ${key}: ${paintColour(p, plan.from)} -> ${paintColour(p, plan.to)}`]);
  const marks = `${plan.record.forced ? ' (forced)' : ''}${plan.record.breakGlass ? ' (break-glass)' : ''}`;
  rows.push([
    `Service/${plan.activeService.name}`,
    `history: + ${plan.record.kind} ${plan.from} -> ${plan.to}${plan.record.by ? ` by ${plan.record.by}` : ''}${marks}`,
  ]);
  const warm = Date.parse(plan.scaleDownAt) - now.getTime();
  rows.push([`Service/${plan.activeService.name}`, `${SCALE_DOWN_AT_ANNOTATION}: ${plan.scaleDownAt} (${plan.from} stays warm for ${humanDuration(warm)})`]);
  for (const pv of plan.previews) {
    const before = view.previews.find((s) => s.metadata.name === pv.name)?.spec?.selector?.[key] ?? '<none>';
    rows.push([`Service/${pv.name}`, `selector ${key}: ${p.paint(colourStyle(before), before)} -> ${paintColour(p, plan.from)}`]);
  }
  if (current?.metadata.name) rows.push([`Deployment/${current.metadata.name}`, `label ${LIVE_LABEL}: ${liveLabelOf(current)} -> false`]);
  return columns(rows, '  ');
}

function colourLine(label: string, colour: Colour, d: Deployment | undefined, p: Painter): string[] {
  if (!d) return [label, `${paintColour(p, colour)} is live`, '<none>', '', ''];
  const a = availabilityOf(d);
  return [label, `${paintColour(p, colour)} is live`, d.metadata.name ?? '', `${a.ready}/${a.desired} ready`, imagesOf(d.spec?.template).join(' ')];
}

export function beforeAfter(view: AppView, plan: SwitchPlan, p: Painter): string {
  return columns([colourLine('before:', plan.from, view.deployments[plan.from], p), colourLine('after:', plan.to, view.deployments[plan.to], p)]);
}
