// After a switch the old colour stays warm until the time the switch wrote on
// the active Service; then it is scaled to zero. Decided here, performed by the
// webhook's leader-elected loop.
import type { AppView } from './app.ts';
import { lastSwitch, parseHistory } from './history.ts';
import { annotationsOf } from './k8s-types.ts';
import { HISTORY_ANNOTATION, SCALE_DOWN_AT_ANNOTATION } from './labels.ts';
import { templateHash } from './template.ts';

export type ScaleDownAction =
  | { kind: 'scale-down'; deployment: string; resourceVersion?: string; service: string; serviceResourceVersion?: string }
  | { kind: 'clear'; service: string; serviceResourceVersion?: string; reason: string };

export function scaleDownDue(view: AppView, now: Date): ScaleDownAction | undefined {
  const svc = view.active;
  const at = annotationsOf(svc)[SCALE_DOWN_AT_ANNOTATION];
  if (!svc || at === undefined) return undefined;
  const due = Date.parse(at);
  const base = { service: svc.metadata.name ?? '', serviceResourceVersion: svc.metadata.resourceVersion };
  if (Number.isNaN(due)) return { kind: 'clear', ...base, reason: `${SCALE_DOWN_AT_ANNOTATION}=${at} is not a time` };
  if (due > now.getTime()) return undefined;
  if (!view.idle) return undefined;
  const idle = view.deployments[view.idle];
  if (!idle) return { kind: 'clear', ...base, reason: `no ${view.idle} Deployment` };
  if ((idle.spec?.replicas ?? 0) === 0) return { kind: 'clear', ...base, reason: `${idle.metadata.name} is already scaled down` };
  const last = lastSwitch(parseHistory(annotationsOf(svc)[HISTORY_ANNOTATION]).records);
  const stillPrevious = last?.from === view.idle && last.fromTemplate === templateHash(idle.spec?.template, view.slotKey);
  if (!stillPrevious)
    return { kind: 'clear', ...base, reason: `${idle.metadata.name} runs a new version since the switch; leaving it up` };
  if (last.fromGeneration !== undefined && idle.metadata.generation !== last.fromGeneration)
    return {
      kind: 'clear',
      ...base,
      reason: `${idle.metadata.name} was changed since the switch (generation ${last.fromGeneration} -> ${idle.metadata.generation}, e.g. scaled by hand); leaving it as it is`,
    };
  return { kind: 'scale-down', deployment: idle.metadata.name ?? '', resourceVersion: idle.metadata.resourceVersion, ...base };
}
