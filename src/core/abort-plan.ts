// The plan of `kubectl bg abort`: undo a pending rollout of the idle colour by setting its pod
// template back to the live colour's (with the idle slot label), in a JSON patch guarded by the
// idle Deployment's resourceVersion. Decided from the app's view alone.
import type { Operation } from 'fast-json-patch';
import type { AppView } from './app.ts';
import { nsFlag } from './commands.ts';
import { declaredPhrase, declarerOfApp, nextRound } from './gitops.ts';
import { holdsPreviousVersion } from './history.ts';
import type { Deployment, PodTemplateSpec } from './k8s-types.ts';
import { imagesOf, templateHash, withSlotLabel } from './template.ts';

export type AbortPlan =
  { ok: true; live: Deployment; idle: Deployment; template: PodTemplateSpec; patch: Operation[] } | { ok: false; reason: string; hint: string };

/** What abort changes, from the app's view alone. */
export function planAbort(view: AppView, scaleDown: boolean): AbortPlan {
  const { app } = view;
  const ns = nsFlag(view.namespace);
  if (!view.live || !view.idle)
    return { ok: false, reason: view.problems[0] ?? `app ${app} has no active Service selecting blue or green`, hint: `kubectl bg status ${app}${ns}` };
  const live = view.deployments[view.live];
  const idle = view.deployments[view.idle];
  if (!live) return { ok: false, reason: `app ${app} has no ${view.live} Deployment`, hint: `kubectl bg status ${app}${ns}` };
  if (!idle) return { ok: false, reason: `nothing to abort: app ${app} has no ${view.idle} Deployment`, hint: `kubectl bg status ${app}${ns}` };
  const declarer = declarerOfApp(view);
  if (declarer)
    return {
      ok: false,
      reason: `app ${app} is ${declaredPhrase(declarer)}: an abort made here would be set back by ${nextRound(declarer)}, so kube-bluegreen does not make it`,
      hint: `abort ${declarer.tool === 'helm' ? `with 'helm upgrade': set the values of` : 'in Git: set the pod template in the manifest of'} Deployment ${idle.metadata.name} back to the live version (images ${imagesOf(live.spec?.template).join(' ')})`,
    };
  const liveT = templateHash(live.spec?.template, view.slotKey);
  const idleT = templateHash(idle.spec?.template, view.slotKey);
  if (liveT === idleT)
    return {
      ok: false,
      reason: `nothing to abort: ${idle.metadata.name} (${view.idle}, idle) already runs the live version of ${app}`,
      hint: `kubectl bg status ${app}${ns}`,
    };
  if (holdsPreviousVersion(view, view.idle))
    return {
      ok: false,
      reason: `nothing to abort: ${idle.metadata.name} (${view.idle}, idle) holds the version that was live before the last switch, kept for a rollback`,
      hint: `kubectl bg rollback ${app}${ns}`,
    };
  const template = withSlotLabel(structuredClone(live.spec?.template ?? {}), view.slotKey, view.idle);
  const patch: Operation[] = [
    { op: 'test', path: '/metadata/resourceVersion', value: idle.metadata.resourceVersion },
    { op: 'replace', path: '/spec/template', value: template },
  ];
  if (scaleDown) patch.push({ op: 'replace', path: '/spec/replicas', value: 0 });
  return { ok: true, live, idle, template, patch };
}
