// After a switch the old colour stays warm until the time the switch wrote on
// the active Service; then it is scaled to zero. Decided here, performed by the
// webhook's leader-elected loop.
import type { AppView } from './app.ts';
import { declaredPhrase, declarerOfApp } from './gitops.ts';
import { hpasScaling } from './hpa.ts';
import { holdsPreviousVersion, lastSwitchOf } from './history.ts';
import { annotationsOf } from './k8s-types.ts';
import { RAISED_GENERATION_ANNOTATION, SCALE_DOWN_AT_ANNOTATION } from './labels.ts';

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
  const keep = whyOldColourStays(view);
  if (keep !== undefined || !idle) return { kind: 'clear', ...base, reason: keep ?? `no ${view.idle} Deployment` };
  return { kind: 'scale-down', deployment: idle.metadata.name ?? '', resourceVersion: idle.metadata.resourceVersion, ...base };
}

/**
 * Why the scale-down a switch scheduled will not scale anything (the loop then only clears the
 * annotation), or undefined when the idle colour still runs, untouched, what the switch left
 * there. Ignores the time: status shows a pending scale-down only when this is undefined.
 */
export function whyOldColourStays(view: AppView): string | undefined {
  if (!view.active || !view.idle) return 'no single live colour';
  // Git declares the replicas of an app it deploys: scaling behind its back would be undone by the next sync.
  const declarer = declarerOfApp(view);
  if (declarer)
    return `app ${view.app} is ${declaredPhrase(declarer)}; release the old colour ${declarer.tool === 'helm' ? "with 'helm upgrade' (its replicas: 0 in the values)" : 'with a commit (replicas: 0 in its manifest)'}`;
  const idle = view.deployments[view.idle];
  if (!idle) return `no ${view.idle} Deployment`;
  if ((idle.spec?.replicas ?? 0) === 0) return `${idle.metadata.name} is already scaled down`;
  // Never against an HPA: it owns the replicas of what it scales (one that follows the live colour is retargeted first).
  const hpa = hpasScaling(view, idle.metadata.name)[0];
  if (hpa)
    return `HorizontalPodAutoscaler ${hpa.metadata.name} scales ${idle.metadata.name}; kube-bluegreen does not scale down a Deployment an HPA scales (point the HPA at the live colour, or delete it, then scale ${idle.metadata.name} to 0)`;
  if (!holdsPreviousVersion(view, view.idle)) return `${idle.metadata.name} runs a new version since the switch; leaving it up`;
  const last = lastSwitchOf(view.active)!;
  // A raise to the live count by the reconciler (an HPA scaled the live colour up) is not a change by hand.
  const raisedByUs = annotationsOf(idle)[RAISED_GENERATION_ANNOTATION] === String(idle.metadata.generation);
  if (last.fromGeneration !== undefined && idle.metadata.generation !== last.fromGeneration && !raisedByUs)
    return `${idle.metadata.name} was changed since the switch (generation ${last.fromGeneration} -> ${idle.metadata.generation}, e.g. scaled by hand); leaving it as it is`;
  return undefined;
}
