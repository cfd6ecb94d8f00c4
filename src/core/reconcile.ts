// What the reconciler does next for one app, decided from a fresh read of it:
// apply a recorded change to the colour that is idle now, drop a record that
// cannot be applied (saying why), keep the live labels equal to what the
// active Service selects, and scale the old colour down when its warm period
// is over. Pure: the webhook's reconciler performs one action, reads the app
// again, and asks again, until nothing is left to do.
import type { AppView } from './app.ts';
import type { Deployment, PodTemplateSpec } from './k8s-types.ts';
import { annotationsOf, labelsOf } from './k8s-types.ts';
import { type Colour, COLOURS, LAST_CHANGE_ANNOTATION, LIVE_LABEL, PENDING_CHANGE_ANNOTATION, SCALE_DOWN_AT_ANNOTATION } from './labels.ts';
import { annotationPath, type ChangeOutcome, escapePointer, isSettled, type PendingChange, readLastChange, type RecordSeal } from './pending-change.ts';
import { type HpaAction, planHpa } from './hpa.ts';
import { scaleDownDue } from './scale-down.ts';
import { imagesOf, templateHash, withSlotLabel } from './template.ts';

export type JsonOp = { op: 'test' | 'add' | 'replace' | 'remove'; path: string; value?: unknown };

/** How long a Deployment may stay labelled live while the Service selects the other colour (a switch in progress sets the label first). */
export const STALE_LIVE_GRACE_MS = 500;

export interface ReconcileInput {
  view: AppView;
  seal: RecordSeal;
  now: Date;
  /** When the reconciler first saw each Deployment (by name) labelled live while the Service selects the other colour. */
  staleLiveSince: ReadonlyMap<string, number>;
}

export type ReconcileAction =
  /**
   * Settle the record held by `holder` on `target`, the colour idle now, in one patch guarded by its
   * generation: the template changed ('applied'), already there ('already'), or not applied and why
   * ('not-applied'). The record stays on the holder; the outcome on the target settles it.
   */
  | {
      kind: 'change';
      holder: string;
      target: string;
      targetColour?: Colour;
      ops: JsonOp[];
      record: PendingChange;
      outcome: 'applied' | 'already' | 'not-applied';
      reason?: string;
    }
  /** A record kube-bluegreen did not write (it does not open with the seal): removed from its holder. */
  | { kind: 'drop-planted'; holder: string; ops: JsonOp[]; reason: string }
  | { kind: 'label'; deployment: string; value: 'true' | 'false'; patch: Record<string, unknown> }
  | { kind: 'scale-down'; deployment: string; ops: JsonOp[]; service: string; servicePatch: Record<string, unknown> }
  | { kind: 'clear-scale-down'; service: string; servicePatch: Record<string, unknown>; reason: string }
  | HpaAction;

export interface ReconcilePlan {
  action?: ReconcileAction;
  /** Deployments labelled live while the Service selects the other colour, for staleLiveSince. */
  staleLive: string[];
  /** Ask again after this long even if nothing changes (a grace period running). */
  recheckMs?: number;
  /** What kube-bluegreen will not do about the app's HorizontalPodAutoscalers, and what to do instead (an Event, once). */
  hpaWarning?: string;
}

/**
 * JSON patch giving `target` the requested template with the target's own slot label, and at least
 * `minReplicas` replicas. Guarded by the slot label (it is still that colour) and, for the reconciler,
 * by metadata.generation (its spec is the one read: a newer change to it is never overwritten).
 */
export function changeOps(
  target: Deployment,
  template: PodTemplateSpec,
  slotKey: string,
  colour: Colour,
  minReplicas: number,
  o: { guardGeneration: boolean },
): JsonOp[] {
  const ops: JsonOp[] = [];
  if (o.guardGeneration) ops.push({ op: 'test', path: '/metadata/generation', value: target.metadata.generation });
  ops.push({ op: 'test', path: `/spec/template/metadata/labels/${escapePointer(slotKey)}`, value: colour });
  ops.push({ op: 'replace', path: '/spec/template', value: withSlotLabel(template, slotKey, colour) });
  if ((target.spec?.replicas ?? 1) < minReplicas) ops.push({ op: 'replace', path: '/spec/replicas', value: minReplicas });
  return ops;
}

function removeRecordOps(holder: Deployment): JsonOp[] {
  const path = annotationPath(PENDING_CHANGE_ANNOTATION);
  return [
    { op: 'test', path, value: annotationsOf(holder)[PENDING_CHANGE_ANNOTATION] },
    { op: 'remove', path },
  ];
}

/** The outcome of a record, as the reconciler writes it on the colour it went to. */
export function outcomeRecord(holder: string, record: PendingChange, applied: boolean, now: Date, reason?: string): ChangeOutcome {
  return {
    request: record.request,
    from: holder,
    by: record.by,
    at: record.at,
    summary: record.summary,
    images: imagesOf(record.template),
    hash: record.hash,
    applied,
    ...(reason ? { reason } : {}),
    ...(record.replaces?.length ? { replaced: record.replaces.map((r) => r.request) } : {}),
    ...(record.replacedMore ? { replacedMore: record.replacedMore } : {}),
    settledAt: now.toISOString(),
  };
}

/** Ops setting the outcome annotation on `target` (guarded by its generation: its spec is the one read). */
export function outcomeOps(target: Deployment, outcome: ChangeOutcome): JsonOp[] {
  const ops: JsonOp[] = [{ op: 'test', path: '/metadata/generation', value: target.metadata.generation }];
  if (!target.metadata.annotations) ops.push({ op: 'add', path: '/metadata/annotations', value: {} });
  ops.push({ op: 'add', path: annotationPath(LAST_CHANGE_ANNOTATION), value: JSON.stringify(outcome) });
  return ops;
}

function planRecord(view: AppView, holder: Deployment, seal: RecordSeal, now: Date): ReconcileAction | 'wait' | 'settled' {
  const name = holder.metadata.name ?? '';
  const value = annotationsOf(holder)[PENDING_CHANGE_ANNOTATION] ?? '';
  const record = seal.open(value);
  if (!record || record.deployment !== (holder.metadata.uid ?? ''))
    return {
      kind: 'drop-planted',
      holder: name,
      ops: removeRecordOps(holder),
      reason: `annotation ${PENDING_CHANGE_ANNOTATION} on ${name} was not written by kube-bluegreen for this Deployment; ignored and removed`,
    };
  if (isSettled(view, record)) return 'settled';
  // Which colour is idle can only be told from a single active Service selecting one colour.
  if (!view.active || !view.live || !view.idle || view.duplicates.length) return 'wait';
  const targetColour = view.idle;
  const target = view.deployments[targetColour];
  if (!target?.metadata.name) {
    // Nowhere to apply it: the outcome goes on the holder itself (the one write to a live colour).
    const reason = `app ${view.app} has no ${targetColour} Deployment to take it`;
    return {
      kind: 'change',
      holder: name,
      target: name,
      ops: outcomeOps(holder, outcomeRecord(name, record, false, now, reason)),
      record,
      outcome: 'not-applied',
      reason,
    };
  }
  // Still labelled live (the Service left it a moment ago): the cluster policy refuses template
  // changes to it until its label follows the Service. Labels first, then the change.
  if (labelsOf(target)[LIVE_LABEL] === 'true') return 'wait';
  const live = view.deployments[view.live];
  const minReplicas = Math.max(live?.spec?.replicas ?? 1, 1);
  const targetHash = templateHash(target.spec?.template, view.slotKey);
  const base = { holder: name, target: target.metadata.name, targetColour, record };
  if (targetHash === record.hash && (target.spec?.replicas ?? 1) >= minReplicas)
    return { kind: 'change', ...base, ops: outcomeOps(target, outcomeRecord(name, record, true, now)), outcome: 'already' };
  // Changed since the record was made, and not by an earlier recorded change the reconciler
  // applied (the cache the record's bases came from may not have seen that one yet): a direct
  // change to the idle colour, which is newer and stays.
  const recordedBase = record.bases[targetColour];
  const ours = readLastChange(target);
  const byAnEarlierRecord = ours?.applied === true && ours.hash === targetHash;
  if (targetHash !== record.hash && recordedBase !== undefined && targetHash !== recordedBase && !byAnEarlierRecord) {
    const reason = `${target.metadata.name} was changed after this change was recorded; the newer change stays`;
    return { kind: 'change', ...base, ops: outcomeOps(target, outcomeRecord(name, record, false, now, reason)), outcome: 'not-applied', reason };
  }
  const ops = changeOps(target, record.template, view.slotKey, targetColour, minReplicas, { guardGeneration: true });
  ops.push(...outcomeOps(target, outcomeRecord(name, record, true, now)).slice(1));
  return { kind: 'change', ...base, ops, outcome: 'applied' };
}

export function planReconcile(input: ReconcileInput): ReconcilePlan {
  const { view, seal, now } = input;
  let recheckMs: number | undefined;
  // 1. Recorded changes, the holder of the newest first (a record on each colour only after a raced switch).
  const holders = COLOURS.map((c) => view.deployments[c])
    .filter((d): d is Deployment => annotationsOf(d)[PENDING_CHANGE_ANNOTATION] !== undefined)
    .sort((a, b) => recordTime(b, seal) - recordTime(a, seal));
  for (const h of holders) {
    const a = planRecord(view, h, seal, now);
    if (a === 'settled') continue;
    if (a === 'wait') recheckMs = 2000;
    else return { action: a, staleLive: [] };
  }
  // 2. Live labels follow the active Service: true at once, false after a grace (a switch labels first).
  const staleLive: string[] = [];
  if (view.live && view.active && !view.duplicates.length) {
    let falseDue: ReconcileAction | undefined;
    for (const c of COLOURS) {
      const d = view.deployments[c];
      const name = d?.metadata.name;
      if (!d || !name) continue;
      const have = labelsOf(d)[LIVE_LABEL];
      const want = c === view.live ? 'true' : 'false';
      if (have === want) continue;
      const label: ReconcileAction = { kind: 'label', deployment: name, value: want, patch: { metadata: { labels: { [LIVE_LABEL]: want } } } };
      if (want === 'true') return { action: label, staleLive };
      if (have !== 'true') {
        falseDue ??= label;
        continue;
      }
      staleLive.push(name);
      const since = input.staleLiveSince.get(name);
      const waited = since === undefined ? 0 : now.getTime() - since;
      if (waited >= STALE_LIVE_GRACE_MS) falseDue ??= label;
      else recheckMs = Math.min(recheckMs ?? Infinity, STALE_LIVE_GRACE_MS - waited);
    }
    if (falseDue) return { action: falseDue, staleLive, ...(recheckMs !== undefined ? { recheckMs } : {}) };
  }
  // 3. The HPA follows the live colour; the idle colour keeps the capacity the HPA gives the live one.
  const hpa = planHpa(view);
  const hpaWarning = hpa.warning !== undefined ? { hpaWarning: hpa.warning } : {};
  if (hpa.action) return { action: hpa.action, staleLive, ...hpaWarning };
  // 4. The old colour's scale-down, never of a colour labelled live, nor of one an HPA scales.
  const due = scaleDownDue(view, now);
  if (due) {
    const servicePatch = { metadata: { resourceVersion: due.serviceResourceVersion, annotations: { [SCALE_DOWN_AT_ANNOTATION]: null } } };
    if (due.kind === 'clear') return { action: { kind: 'clear-scale-down', service: due.service, servicePatch, reason: due.reason }, staleLive, ...hpaWarning };
    const d = COLOURS.map((c) => view.deployments[c]).find((x) => x?.metadata.name === due.deployment);
    if (d && labelsOf(d)[LIVE_LABEL] === 'false')
      return {
        action: {
          kind: 'scale-down',
          deployment: due.deployment,
          ops: [
            { op: 'test', path: '/metadata/resourceVersion', value: due.resourceVersion },
            { op: 'test', path: `/metadata/labels/${escapePointer(LIVE_LABEL)}`, value: 'false' },
            { op: 'replace', path: '/spec/replicas', value: 0 },
          ],
          service: due.service,
          servicePatch,
        },
        staleLive,
        ...hpaWarning,
      };
  }
  // A scale-down that falls due later: look again then (no watch event marks that moment).
  const at = Date.parse(annotationsOf(view.active)[SCALE_DOWN_AT_ANNOTATION] ?? '');
  if (!Number.isNaN(at) && at > now.getTime()) recheckMs = Math.min(recheckMs ?? Infinity, at - now.getTime() + 50);
  return { staleLive, ...(recheckMs !== undefined ? { recheckMs } : {}), ...hpaWarning };
}

function recordTime(d: Deployment, seal: RecordSeal): number {
  const r = seal.open(annotationsOf(d)[PENDING_CHANGE_ANNOTATION] ?? '');
  return r ? Date.parse(r.at) || 0 : Number.MAX_SAFE_INTEGER;
}
