// What a switch or a rollback changes, decided from the app's view alone.
// `kubectl bg` performs the plan; the webhook re-checks the same readiness rule
// (switch-readiness.ts) when the Service patch arrives.
import type { AppView } from './app.ts';
import { readCheckUnverified } from './checks.ts';
import { nsFlag } from './commands.ts';
import { parseDuration } from './duration.ts';
import { declaredPhrase, declarerOfApp, nextRound, switchWith } from './gitops.ts';
import { appendHistory, historyOf, lastSwitch, switchRecord, type SwitchRecord } from './history.ts';
import { annotationsOf } from './k8s-types.ts';
import {
  type Colour,
  DEFAULT_SCALE_DOWN_DELAY_SECONDS,
  FORCE_SWITCH_ANNOTATION,
  HISTORY_ANNOTATION,
  LIVE_LABEL,
  otherColour,
  SCALE_DOWN_AT_ANNOTATION,
  SCALE_DOWN_DELAY_ANNOTATION,
} from './labels.ts';
import { imagesOf } from './template.ts';
import { switchReadiness } from './switch-readiness.ts';

export interface SwitchOptions {
  kind: 'switch' | 'rollback';
  /** Colour to switch to; default the idle one (switch) or the previous one (rollback). */
  to?: Colour;
  force?: boolean;
  now: Date;
  by?: string;
  /** As the break-glass group (the webhooks skipped): recorded so in the history. */
  breakGlass?: boolean;
}

/** 'pending': a redirected change has not reached the target yet (`--wait` waits for it to land and roll out). */
/** 'gitops': the app is deployed from Git; the switch is a commit (the refusal names it). */
export type RefusalCode = 'gitops' | 'checking' | 'check-failed' | 'ambiguous' | 'no-target' | 'not-ready' | 'pending' | 'already-live' | 'scaled-down';

export interface SwitchRefusal {
  ok: false;
  code: RefusalCode;
  reason: string;
  /** The command that moves things forward. */
  hint: string;
  /** For 'scaled-down': the Deployment to scale up first and to how many replicas. */
  scaleUp?: { deployment: string; replicas: number };
}

export interface NamedPatch {
  name: string;
  patch: Record<string, unknown>;
}

export interface SwitchPlan {
  ok: true;
  from: Colour;
  to: Colour;
  record: SwitchRecord;
  /** Merge patch for the active Service: selector, history, scale-down time, override (with a resourceVersion precondition). */
  activeService: NamedPatch;
  previews: NamedPatch[];
  /** Merge patches moving the live label to the new colour's Deployment. */
  liveLabels: NamedPatch[];
  scaleDownAt: string;
  warnings: string[];
}

export function scaleDownDelaySeconds(view: AppView): { seconds: number; warning?: string } {
  const raw = annotationsOf(view.active)[SCALE_DOWN_DELAY_ANNOTATION];
  if (raw === undefined) return { seconds: DEFAULT_SCALE_DOWN_DELAY_SECONDS };
  const s = parseDuration(raw);
  if (s === undefined)
    return {
      seconds: DEFAULT_SCALE_DOWN_DELAY_SECONDS,
      warning: `${SCALE_DOWN_DELAY_ANNOTATION}=${raw} is not a duration (e.g. 10m, 90s, 0); using ${DEFAULT_SCALE_DOWN_DELAY_SECONDS}s`,
    };
  return { seconds: s };
}

export function planSwitch(view: AppView, opts: SwitchOptions): SwitchPlan | SwitchRefusal {
  const { app } = view;
  const ns = nsFlag(view.namespace);
  const verb = opts.kind;
  if (!view.active || !view.live)
    return {
      ok: false,
      code: 'ambiguous',
      reason: view.problems[0] ?? `app ${app} has no active Service selecting blue or green`,
      hint: `kubectl bg status ${app}${ns}`,
    };
  const history = historyOf(view.active);
  const last = lastSwitch(history.records);
  const from = view.live;
  let to = opts.to ?? otherColour(from);
  if (opts.kind === 'rollback' && !opts.to && last && last.to === from) to = last.from;
  if (to === from) return { ok: false, code: 'already-live', reason: `${to} is already the live colour of ${app}`, hint: `kubectl bg status ${app}${ns}` };
  const target = view.deployments[to];
  // Git declares the selector of an app it deploys: a switch made here is set back by the next sync.
  const declarer = declarerOfApp(view);
  if (declarer) {
    const scaled = target && (target.spec?.replicas ?? 1) < (view.deployments[from]?.spec?.replicas ?? 1);
    return {
      ok: false,
      code: 'gitops',
      reason: `app ${app} is ${declaredPhrase(declarer)}: a ${verb} made here would be set back by ${nextRound(declarer)}, so kube-bluegreen does not make it`,
      hint:
        `${verb} ${switchWith(declarer, view, to)}` +
        (scaled ? ` (and the replicas of Deployment ${target.metadata.name} to ${view.deployments[from]?.spec?.replicas ?? 1})` : '') +
        `; the webhook admits it once ${to} is ready ('kubectl bg status ${app}${ns} --watch')`,
    };
  }
  if (!target)
    return {
      ok: false,
      code: 'no-target',
      reason: `app ${app} has no ${to} Deployment`,
      hint: `kubectl bg init ${app}${ns} --from deployment/<name>`,
    };
  const current = view.deployments[from];
  const required = current?.spec?.replicas ?? target.spec?.replicas ?? 1;
  const ready = switchReadiness(view, to, target, required, opts.now, readCheckUnverified);
  const warnings: string[] = [];
  if (!ready.ok) {
    if (opts.kind === 'rollback' && ready.blocker === 'not-ready' && (target.spec?.replicas ?? 0) < required)
      return {
        ok: false,
        code: 'scaled-down',
        reason: `${target.metadata.name} is scaled to ${target.spec?.replicas ?? 0}; it needs ${required} replicas before traffic moves back`,
        hint: `kubectl bg rollback ${app}${ns}`,
        scaleUp: { deployment: target.metadata.name ?? '', replicas: required },
      };
    if (!opts.force)
      return {
        ok: false,
        code: ready.blocker,
        reason: `cannot ${verb} ${app} to ${to}: ${ready.reason}`,
        hint:
          ready.blocker === 'check-failed'
            ? `override with 'kubectl bg ${verb} ${app}${ns} --force' (recorded in the history)`
            : ready.blocker !== 'not-ready'
              ? `'kubectl bg ${verb} ${app}${ns} --wait' waits for it ${ready.blocker === 'pending' ? 'to land and roll out' : 'to pass'}, or override with 'kubectl bg ${verb} ${app}${ns} --force'`
              : `wait with 'kubectl bg status ${app}${ns} --watch', or override with 'kubectl bg ${verb} ${app}${ns} --force'`,
      };
    warnings.push(`forced: ${ready.reason}`);
  }

  const delay = scaleDownDelaySeconds(view);
  if (delay.warning) warnings.push(delay.warning);
  const scaleDownAt = new Date(opts.now.getTime() + delay.seconds * 1000).toISOString();
  const record = switchRecord(view, opts.kind, from, to, opts.now, { images: imagesOf(target.spec?.template) });
  if (current?.metadata.generation !== undefined) record.fromGeneration = current.metadata.generation;
  if (opts.by) record.by = opts.by;
  if (opts.force && !ready.ok) record.forced = true;
  if (opts.breakGlass) record.breakGlass = true;

  const activeService: NamedPatch = {
    name: view.active.metadata.name ?? '',
    patch: {
      metadata: {
        resourceVersion: view.active.metadata.resourceVersion,
        annotations: {
          [HISTORY_ANNOTATION]: appendHistory(history.records, record),
          [SCALE_DOWN_AT_ANNOTATION]: scaleDownAt,
          [FORCE_SWITCH_ANNOTATION]: record.forced ? to : null,
        },
      },
      spec: { selector: { [view.slotKey]: to } },
    },
  };
  const previews = view.previews.map((s) => ({
    name: s.metadata.name ?? '',
    patch: { spec: { selector: { [view.slotKey]: from } } },
  }));
  const liveLabels: NamedPatch[] = [];
  if (target.metadata.name) liveLabels.push({ name: target.metadata.name, patch: { metadata: { labels: { [LIVE_LABEL]: 'true' } } } });
  if (current?.metadata.name) liveLabels.push({ name: current.metadata.name, patch: { metadata: { labels: { [LIVE_LABEL]: 'false' } } } });
  return { ok: true, from, to, record, activeService, previews, liveLabels, scaleDownAt, warnings };
}
