// Where an app stands: the pure view model behind `kubectl bg status`.
import type { AppView } from './app.ts';
import { availabilityOf, readyToServe } from './availability.ts';
import { type CheckView, checkViews, preSwitchCheckGate, readCheckUnverified } from './checks.ts';
import { nsFlag } from './commands.ts';
import { declaredPhrase, switchWith, declarerOfApp } from './gitops.ts';
import { type HpaStatus, hpaStatuses, planHpa } from './hpa.ts';
import { historyOf, holdsPreviousVersion, lastSwitch, type SwitchRecord } from './history.ts';
import type { Deployment } from './k8s-types.ts';
import { annotationsOf } from './k8s-types.ts';
import { type Colour, COLOURS, SCALE_DOWN_AT_ANNOTATION } from './labels.ts';
import { type ChangeOutcome, pendingChanges, readLastChange } from './pending-change.ts';
import { whyOldColourStays } from './scale-down.ts';
import { imagesOf, templateHash } from './template.ts';

/** 'checking' / 'check-failed': the idle colour is rolled out and available, and its pre-switch check is running or waiting to start / failed. */
export type Phase = 'stable' | 'idle-rolling-out' | 'checking' | 'check-failed' | 'ready-to-switch' | 'degraded';

export interface ColourStatus {
  colour: Colour;
  deployment: string;
  role: 'live' | 'idle';
  images: string[];
  desired: number;
  ready: number;
  available: number;
  updated: number;
  template: string;
}

export interface AppStatus {
  app: string;
  namespace: string;
  slotLabel: string;
  activeService: string | null;
  previewServices: string[];
  live: Colour | null;
  idle: Colour | null;
  phase: Phase;
  /** One sentence on the phase: why degraded, what the idle colour is doing, what to run next. */
  message: string;
  colours: ColourStatus[];
  lastSwitch: SwitchRecord | null;
  /**
   * When the old colour is due to be scaled down (RFC 3339): set when a switch scheduled it and the
   * idle colour still runs, untouched, the version the switch left there (a new rollout cancels it).
   */
  scaleDownAt: string | null;
  /** Changes redirected to the idle colour and not applied yet (the reconciler is on them). */
  pending: PendingStatus[];
  /** The last recorded change that was settled, on the colour it went to: applied, or not and why. */
  lastChange: (ChangeOutcome & { deployment: string }) | null;
  problems: string[];
  /** Who declares the app ("deployed from Git by Argo CD (...)"; switches are commits then), or null. */
  declaredBy: string | null;
  /** The release gates that matter now: the idle colour's pre-switch check, the live colour's post-switch check. */
  checks: CheckView[];
  /** The app's HorizontalPodAutoscalers: which colour each scales (one follows the live colour), and what kube-bluegreen will not do about them. */
  hpas: HpaStatus[];
  hpaWarning: string | null;
}

export interface PendingStatus {
  /** The live Deployment that holds the record. */
  holder: string;
  by: string;
  at: string;
  summary: string;
  images: string[];
}

function colourStatus(colour: Colour, d: Deployment, live: Colour | undefined, slotKey: string): ColourStatus {
  const a = availabilityOf(d);
  return {
    colour,
    deployment: d.metadata.name ?? '',
    role: colour === live ? 'live' : 'idle',
    images: imagesOf(d.spec?.template),
    desired: a.desired,
    ready: a.ready,
    available: a.available,
    updated: a.updated,
    template: templateHash(d.spec?.template, slotKey),
  };
}

export function appStatus(view: AppView): AppStatus {
  const history = historyOf(view.active);
  const last = lastSwitch(history.records);
  const problems = [...view.problems];
  if (history.error) problems.push(history.error);
  const pending = pendingChanges(view).map((x): PendingStatus => ({
    holder: x.holder.metadata.name ?? '',
    by: x.record?.by ?? '',
    at: x.record?.at ?? '',
    summary: x.record?.summary ?? 'unreadable record',
    images: x.record ? imagesOf(x.record.template) : [],
  }));
  const git = declarerOfApp(view);
  const colours = COLOURS.flatMap((c) => {
    const d = view.deployments[c];
    return d ? [colourStatus(c, d, view.live, view.slotKey)] : [];
  });
  const base = {
    app: view.app,
    namespace: view.namespace,
    slotLabel: view.slotKey,
    activeService: view.active?.metadata.name ?? null,
    previewServices: view.previews.map((s) => s.metadata.name ?? ''),
    live: view.live ?? null,
    idle: view.idle ?? null,
    colours,
    lastSwitch: last ?? null,
    scaleDownAt: whyOldColourStays(view) === undefined ? (annotationsOf(view.active)[SCALE_DOWN_AT_ANNOTATION] ?? null) : null,
    pending,
    lastChange: newestOutcome(view),
    problems,
    declaredBy: git ? declaredPhrase(git) : null,
    checks: checkViews(view, readCheckUnverified),
    hpas: hpaStatuses(view),
    hpaWarning: planHpa(view).warning ?? null,
  };
  const p = pending[0];
  if (p && view.live && view.idle)
    return {
      ...base,
      phase: 'idle-rolling-out',
      message: `the ${p.summary} by ${p.by || 'an unknown user'} is recorded on ${p.holder} and being applied to ${view.deployments[view.idle]?.metadata.name ?? view.idle}`,
    };
  const { phase, message } = phaseOf(view);
  // From Git, the switch is a commit.
  if (git && phase === 'ready-to-switch' && view.idle)
    return { ...base, phase, message: `${view.idle} is rolled out and available; switch ${switchWith(git, view, view.idle)}` };
  return { ...base, phase, message };
}

function newestOutcome(view: AppView): (ChangeOutcome & { deployment: string }) | null {
  let best: (ChangeOutcome & { deployment: string }) | null = null;
  for (const c of COLOURS) {
    const d = view.deployments[c];
    const o = readLastChange(d);
    if (o && (!best || o.settledAt > best.settledAt)) best = { ...o, deployment: d!.metadata.name ?? '' };
  }
  return best;
}

function phaseOf(view: AppView): { phase: Phase; message: string } {
  const app = `${view.app}${nsFlag(view.namespace)}`;
  if (!view.active) return { phase: 'degraded', message: view.problems[0] ?? `app ${view.app} has no Service` };
  if (!view.live || !view.idle) return { phase: 'degraded', message: view.problems[0] ?? `the active Service selects no colour` };
  const live = view.deployments[view.live];
  if (!live) return { phase: 'degraded', message: `the active Service selects ${view.live}, but app ${view.app} has no ${view.live} Deployment` };
  const liveReplicas = live.spec?.replicas ?? 1;
  const liveReady = readyToServe(live, liveReplicas);
  if (!liveReady.ok) return { phase: 'degraded', message: `live colour ${view.live}: ${liveReady.reason}` };
  const idle = view.deployments[view.idle];
  if (!idle) return { phase: 'stable', message: `no ${view.idle} Deployment; run 'kubectl bg init ${app}' to create it` };
  const liveT = templateHash(live.spec?.template, view.slotKey);
  const idleT = templateHash(idle.spec?.template, view.slotKey);
  if (idleT === liveT) return { phase: 'stable', message: `${view.idle} runs the same version as ${view.live}` };
  if (holdsPreviousVersion(view, view.idle)) {
    const warm = (idle.spec?.replicas ?? 0) > 0;
    return {
      phase: 'stable',
      message: warm
        ? `${view.idle} keeps the previous version warm; 'kubectl bg rollback ${app}' switches back at once`
        : `${view.idle} holds the previous version, scaled down; 'kubectl bg rollback ${app}' scales it up and switches back`,
    };
  }
  if ((idle.spec?.replicas ?? 0) === 0) return { phase: 'stable', message: `${view.idle} is scaled down` };
  const idleReady = readyToServe(idle, liveReplicas);
  if (idleReady.ok) {
    const gate = preSwitchCheckGate(view, view.idle, readCheckUnverified);
    if (gate) return { phase: gate.state === 'failed' ? 'check-failed' : 'checking', message: `${view.idle} is rolled out and available, but ${gate.reason}` };
    return { phase: 'ready-to-switch', message: `${view.idle} is rolled out and available; run 'kubectl bg switch ${app}'` };
  }
  return { phase: 'idle-rolling-out', message: idleReady.reason };
}
