// The admission decision, pure: (endpoint, request, the app's view, time) in,
// allow / deny with a reason / a JSON patch / warnings / the checks a redirect needs out.
import fjp from 'fast-json-patch';
import type { Operation as JsonPatchOp } from 'fast-json-patch';
import { type AppView, appNameOf, colourOfDeployment, servingColours, withService } from '../app.ts';
import { readyToServe } from '../availability.ts';
import { readCheck } from '../checks.ts';
import { nsFlag } from '../commands.ts';
import type { Deployment, Scale, Service, UserInfo } from '../k8s-types.ts';
import { annotationsOf, labelsOf } from '../k8s-types.ts';
import {
  ANNOTATIONS_MAX_BYTES,
  APP_LABEL,
  type Colour,
  COLOURS,
  FORCE_SWITCH_ANNOTATION,
  isColour,
  LIVE_LABEL,
  otherColour,
  PENDING_CHANGE_ANNOTATION,
  ROLE_ANNOTATION,
  SLOT_LABEL_ANNOTATION,
} from '../labels.ts';
import { outcomeOf, type RecordSeal, REPLACED_KEPT, setAnnotationOps } from '../pending-change.ts';
import { switchReadiness } from '../switch-readiness.ts';
import { changeOps } from '../reconcile.ts';
import { describeTemplateChange, jsonEqual, sameTemplate, templateChange, templateHash } from '../template.ts';
import {
  declaredPhrase,
  switchWith,
  type Declarer,
  declarerOfApp,
  fieldManagerOf,
  gitApplierOf,
  gitDeclarerOfRequest,
  gitSwitchEdit,
  HELM_FIELD_MANAGER,
  nextRound,
} from '../gitops.ts';
import type { AdmissionRequest } from './review.ts';

export type Endpoint = 'mutate' | 'validate';

/**
 * What the webhook must check, without writing anything, before it admits a redirect: that the user
 * may patch the idle Deployment (a SubjectAccessReview as request.userInfo) and that the idle
 * Deployment would accept the change (a server-side dry run of `idleOps`).
 */
export interface RedirectCheck {
  namespace: string;
  app: string;
  live: { name: string; colour: Colour };
  idle: { name: string; colour: Colour };
  /** JSON patch for the idle Deployment, the same shape the reconciler applies. */
  idleOps: JsonPatchOp[];
  summary: string;
  user: UserInfo;
}

/** Who the webhook is, and its seal for pending-change records. */
export interface AdmissionContext {
  seal: RecordSeal;
  /** The webhook's own username: its reconciler may write the records it reconciles. */
  self?: string;
}

export type Decision =
  | {
      allowed: true;
      outcome: 'allowed' | 'redirected' | 'not-enrolled';
      warnings: string[];
      patch?: JsonPatchOp[];
      /** For a redirect: what to check before answering (the answer is a denial if a check fails). */
      check?: RedirectCheck;
    }
  | { allowed: false; outcome: 'denied'; code: number; reason: string; message: string; warnings: string[] }
  /** Not an AdmissionReview this webhook handles: answered with HTTP 400. */
  | { allowed: false; outcome: 'invalid'; message: string };

/** Users whose deletes are part of removing a namespace or an owner: never refused. */
const CLEANUP_USERS = new Set(['system:serviceaccount:kube-system:namespace-controller', 'system:serviceaccount:kube-system:generic-garbage-collector']);

const allow = (warnings: string[] = []): Decision => ({ allowed: true, outcome: 'allowed', warnings });
const notEnrolled = (): Decision => ({ allowed: true, outcome: 'not-enrolled', warnings: [] });
const deny = (message: string, code = 403, reason = 'Forbidden', warnings: string[] = []): Decision => ({
  allowed: false,
  outcome: 'denied',
  code,
  reason,
  message,
  warnings,
});
const invalid = (message: string): Decision => ({ allowed: false, outcome: 'invalid', message });

/** What kind of object the request is about, or why it is not one of ours. */
export function requestTarget(req: AdmissionRequest): { type: 'deployment' | 'scale' | 'service' } | { type: 'invalid'; message: string } {
  const { kind, resource } = req;
  const sub = req.subResource ?? '';
  if (resource.group === 'apps' && resource.resource === 'deployments' && sub === '' && kind.kind === 'Deployment') return { type: 'deployment' };
  if (resource.group === 'apps' && resource.resource === 'deployments' && sub === 'scale' && kind.kind === 'Scale') return { type: 'scale' };
  if (resource.group === '' && resource.resource === 'services' && sub === '' && kind.kind === 'Service') return { type: 'service' };
  const what = `${resource.group || 'core'}/${resource.resource}${sub ? `/${sub}` : ''} (${kind.kind})`;
  return { type: 'invalid', message: `this webhook handles deployments, deployments/scale and services, not ${what}` };
}

/** The app a request belongs to: from the object's labels (the old object's for DELETE). */
export function requestApp(req: AdmissionRequest): string | undefined {
  return appNameOf(req.object as Deployment | undefined) ?? appNameOf(req.oldObject as Deployment | undefined);
}

/**
 * @param view the app's objects as cached, or undefined when the request is for no enrolled app.
 *   For the scale subresource, the adapter resolves the app from the Deployment named in the request.
 */
export function decide(endpoint: Endpoint, req: AdmissionRequest, view: AppView | undefined, now: Date, ctx: AdmissionContext): Decision {
  const target = requestTarget(req);
  if (target.type === 'invalid') return invalid(target.message);
  if (req.operation === 'CONNECT') return invalid('CONNECT requests are not handled');
  if (!view) return notEnrolled();
  switch (target.type) {
    case 'deployment':
      return decideDeployment(endpoint, req, view, now, ctx);
    case 'scale':
      return decideScale(req, view);
    case 'service':
      return endpoint === 'validate' ? decideService(req, view, now, ctx) : allow();
  }
}

// ---- Deployments -----------------------------------------------------------

/** Changes never allowed on an enrolled Deployment, whatever its colour. */
function deploymentInvariant(oldD: Deployment, newD: Deployment, view: AppView): string | undefined {
  const name = newD.metadata.name;
  if (!jsonEqual(oldD.spec?.selector ?? null, newD.spec?.selector ?? null))
    return `the selector of Deployment ${name} cannot change: the ReplicaSets it owns would be orphaned and their pods left running outside the app`;
  for (const key of [view.slotKey, APP_LABEL]) {
    const before = oldD.spec?.template?.metadata?.labels?.[key];
    const after = newD.spec?.template?.metadata?.labels?.[key];
    if (before !== after)
      return `the ${key} label of Deployment ${name}'s pod template cannot change (${before ?? '<none>'} -> ${after ?? '<none>'}): it would mix colours or orphan pods; each colour keeps its own Deployment`;
  }
  return undefined;
}

function decideDeployment(endpoint: Endpoint, req: AdmissionRequest, view: AppView, now: Date, ctx: AdmissionContext): Decision {
  const ns = view.namespace;
  if (req.operation === 'DELETE') {
    if (endpoint === 'mutate') return allow();
    const oldD = req.oldObject as Deployment;
    if (CLEANUP_USERS.has(req.userInfo.username ?? '')) return allow();
    if (!isLiveDeployment(oldD, view)) return allow();
    const twin = [view.deployments[view.live!], ...view.duplicates].find(
      (d) => d && d.metadata.name !== oldD.metadata.name && colourOfDeployment(d, view.slotKey) === view.live,
    );
    if (twin) return allow([`${twin.metadata.name} is also ${view.live} and keeps serving app ${view.app}`]);
    return deny(
      `Deployment ${oldD.metadata.name} is the live colour (${view.live}) of app ${view.app}: Service ${view.active?.metadata.name} sends traffic to it. ` +
        `Switch first with 'kubectl bg switch ${view.app}${nsFlag(ns)}', then delete it; to remove the whole app, delete Service ${view.active?.metadata.name} first`,
    );
  }
  if (req.operation === 'CREATE') {
    const d = req.object as Deployment;
    const c = colourOfDeployment(d, view.slotKey);
    if (!c) return allow([`Deployment ${d.metadata.name} has no ${view.slotKey}=blue|green label in its pod template; it is not part of a colour`]);
    const existing = view.deployments[c];
    if (existing && existing.metadata.name !== d.metadata.name)
      return deny(`app ${view.app} already has a ${c} Deployment (${existing.metadata.name}); each colour has exactly one`, 409, 'AlreadyExists');
    return allow();
  }
  // UPDATE
  const oldD = req.oldObject as Deployment;
  const newD = req.object as Deployment;
  const gitWarnings = declaredLiveLabelWarnings(req, newD, view);
  const broken = deploymentInvariant(oldD, newD, view);
  if (broken) return deny(broken, 422, 'Invalid');
  const record = recordChange(req, oldD, newD, ctx);
  if (record === 'planted' && endpoint === 'validate') return deny(plantedMessage(newD), 403, 'Forbidden');
  // On /mutate a planted record is undone (a replace or `rollout undo` carries an old one), or replaced below.
  const restore =
    record === 'planted' ? setAnnotationOps(newD.metadata.annotations, PENDING_CHANGE_ANNOTATION, annotationsOf(oldD)[PENDING_CHANGE_ANNOTATION]) : [];
  const restoreWarnings = record === 'planted' ? [plantedWarning(newD)] : [];
  const allowRestored = (extra: string[] = gitWarnings): Decision =>
    restore.length ? { allowed: true, outcome: 'allowed', warnings: [...restoreWarnings, ...extra], patch: restore as JsonPatchOp[] } : allow(extra);

  const colour = colourOfDeployment(oldD, view.slotKey);
  if (!isLiveDeployment(oldD, view)) {
    // No single live colour (ambiguous Services): a colour that still receives traffic must not change in place.
    const serving = !view.live && colour !== undefined && servingColours(view).has(colour);
    if (serving && !sameTemplate(oldD.spec?.template, newD.spec?.template, view.slotKey, { ignoreRestart: true })) return denyAmbiguous(view);
    return allowRestored([...gitWarnings, ...(view.problems.length && !view.live ? view.problems.slice(0, 1) : [])]);
  }

  const name = newD.metadata.name ?? '';
  const replicas = newD.spec?.replicas ?? 1;
  if (replicas === 0 && (oldD.spec?.replicas ?? 1) !== 0) return denyScaleToZero(view, name);
  const change = templateChange(oldD.spec?.template, newD.spec?.template, view.slotKey, { ignoreRestart: true });
  if (change === 'none') return allowRestored(gitWarnings);

  // A pod template change to the live colour. From Git, or to an app Git declares: refused (dry runs
  // too, so drift checks show it), because Git declares the idle colour as well and the next sync
  // would set a redirect back. From a Helm release that declares both colours: refused the same way.
  const idleColour = otherColour(view.live!);
  const idle = view.deployments[idleColour];
  const declarer = gitDeclarerOfRequest(req.options, newD) ?? declarerOfApp(view);
  if (declarer) return denyDeclaredChange(view, name, describeTemplateChange(change), idle?.metadata.name, declarer);
  if (endpoint === 'validate')
    return deny(
      `the pod template of ${name}, the live colour of app ${view.app}, cannot change in place; ` +
        `change it and kube-bluegreen redirects the change to the idle colour, then run 'kubectl bg switch ${view.app}${nsFlag(ns)}'`,
    );
  if (!idle?.metadata.name)
    return deny(
      `app ${view.app} has no ${idleColour} Deployment to take this change, and the live colour ${name} must not change in place; ` +
        `create it with 'kubectl bg init ${view.app}${nsFlag(ns)} --from deployment/${name}'`,
      409,
      'Conflict',
    );
  if (view.problems.length) return denyAmbiguous(view);

  // The live Deployment keeps its old template: the patch turns the new template back into the old
  // one (computed on the templates alone: nothing else of the object changes).
  const oldT = oldD.spec?.template;
  const newT = newD.spec!.template!;
  const revert: JsonPatchOp[] = oldT
    ? fjp.compare(newT, oldT).map((op) => ({ ...op, path: `/spec/template${op.path}` }) as JsonPatchOp)
    : [{ op: 'remove', path: '/spec/template' }];
  // Our own record is in the request already: this is a reinvocation after another mutating webhook
  // changed the template we restored (a tag resolved to a digest, a default added). Restore it again;
  // the change recorded the first time stands.
  if (record === 'ours') return { allowed: true, outcome: 'allowed', warnings: [], patch: revert };

  const summary = describeTemplateChange(change);
  // A change recorded earlier and not settled yet is replaced by this one: it says so, and the
  // reconciler reports the replaced one when it settles this.
  const before = ctx.seal.open(annotationsOf(oldD)[PENDING_CHANGE_ANNOTATION] ?? '');
  const pendingBefore = before && !outcomeOf(view, before.request) ? before : undefined;
  const chain = pendingBefore
    ? [{ by: pendingBefore.by, request: pendingBefore.request, at: pendingBefore.at, summary: pendingBefore.summary }, ...(pendingBefore.replaces ?? [])]
    : [];
  const replaces = chain.length ? chain.slice(0, REPLACED_KEPT) : undefined;
  const replacedMore = (pendingBefore?.replacedMore ?? 0) + Math.max(0, chain.length - REPLACED_KEPT);
  const newHash = templateHash(newT, view.slotKey);
  const bases: Partial<Record<Colour, string>> = {};
  for (const c of COLOURS) {
    const d = view.deployments[c];
    if (d) bases[c] = templateHash(d.spec?.template, view.slotKey);
  }
  let value: string;
  try {
    value = sealRecord();
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    return deny(
      `this ${summary} to ${name} (live) is nested too deeply to record for ${idle.metadata.name} (idle); nothing was changed. Apply it to ${idle.metadata.name} directly, then run 'kubectl bg switch ${view.app}${nsFlag(ns)}'`,
      422,
      'Invalid',
    );
  }
  function sealRecord(): string {
    return ctx.seal.seal({
      template: newT,
      hash: newHash,
      bases,
      from: view.live!,
      to: idleColour,
      minReplicas: replicas,
      summary,
      by: req.userInfo.username ?? '',
      request: req.uid,
      at: now.toISOString(),
      deployment: oldD.metadata.uid ?? '',
      base: oldD.metadata.resourceVersion ?? '',
      ...(replaces ? { replaces } : {}),
      ...(replacedMore ? { replacedMore } : {}),
    });
  }
  const others = Object.entries(annotationsOf(newD)).reduce((n, [k, v]) => (k === PENDING_CHANGE_ANNOTATION ? n : n + k.length + v.length), 0);
  if (others + PENDING_CHANGE_ANNOTATION.length + value.length > ANNOTATIONS_MAX_BYTES)
    return deny(
      `this ${summary} to ${name} (live) is too large to record for ${idle.metadata.name} (idle): Kubernetes keeps at most 256 KiB of annotations on an object. ` +
        `Nothing was changed. Apply it to ${idle.metadata.name} directly ('kubectl apply' of its manifest), then run 'kubectl bg switch ${view.app}${nsFlag(ns)}'`,
      422,
      'Invalid',
    );
  const patch = [...revert, ...(setAnnotationOps(newD.metadata.annotations, PENDING_CHANGE_ANNOTATION, value) as JsonPatchOp[])];
  const warnings = [`${summary} redirected to ${idle.metadata.name} (idle); run 'kubectl bg switch ${view.app}${nsFlag(ns)}' when it is ready`];
  if (pendingBefore)
    warnings.push(`it replaces the ${pendingBefore.summary} by ${pendingBefore.by || 'an unknown user'} that had not reached ${idle.metadata.name} yet`);
  // By fingerprint: the cache keeps the idle colour's template as labels and fingerprint only.
  const idleHash = templateHash(idle.spec?.template, view.slotKey);
  if ((idle.spec?.replicas ?? 0) > 0 && idleHash !== newHash && idleHash !== (bases[view.live!] ?? templateHash(oldT, view.slotKey)))
    warnings.push(`${idle.metadata.name} was running another version; this change replaces it`);
  return {
    allowed: true,
    outcome: 'redirected',
    warnings,
    patch,
    check: {
      namespace: ns,
      app: view.app,
      live: { name, colour: view.live! },
      idle: { name: idle.metadata.name, colour: idleColour },
      idleOps: changeOps(idle, newT, view.slotKey, idleColour, replicas, { guardGeneration: false }) as JsonPatchOp[],
      summary,
      user: req.userInfo,
    },
  };
}

/**
 * How a request treats the pending-change record: 'unchanged'; 'self' (the webhook's reconciler);
 * 'ours' (sealed for this very update: this webhook wrote it earlier in the same request); or
 * 'planted' (anything else: hand-written, altered, removed, or an old one copied back).
 */
export function recordChange(req: AdmissionRequest, oldD: Deployment, newD: Deployment, ctx: AdmissionContext): 'unchanged' | 'self' | 'ours' | 'planted' {
  const before = annotationsOf(oldD)[PENDING_CHANGE_ANNOTATION];
  const after = annotationsOf(newD)[PENDING_CHANGE_ANNOTATION];
  if (before === after) return 'unchanged';
  // 'ours' first: where the webhook and the user are one identity (a local cluster's admin), a
  // reinvocation must still be told apart from the reconciler's own writes.
  if (after !== undefined) {
    const r = ctx.seal.open(after);
    if (r && r.deployment === (oldD.metadata.uid ?? '') && r.base === (oldD.metadata.resourceVersion ?? '')) return 'ours';
  }
  if (ctx.self !== undefined && req.userInfo.username === ctx.self) return 'self';
  return 'planted';
}

function plantedMessage(d: Deployment): string {
  return `annotation ${PENDING_CHANGE_ANNOTATION} of Deployment ${d.metadata.name} is written only by kube-bluegreen (it records a redirected change); leave it out of your change`;
}

function plantedWarning(d: Deployment): string {
  return `ignored the change to annotation ${PENDING_CHANGE_ANNOTATION} of ${d.metadata.name}: only kube-bluegreen writes it`;
}

/** A change the tool that declares the app would undo: refused with where to make it instead. */
function denyDeclaredChange(view: AppView, name: string, summary: string, idleName: string | undefined, by: Declarer): Decision {
  const idleColour = otherColour(view.live!);
  const svc = view.active?.metadata.name;
  if (by.tool !== 'helm') {
    const where = idleName
      ? `In Git, make this change in the manifest of Deployment ${idleName} (the idle colour, ${idleColour}); once it is rolled out, switch: ${gitSwitchEdit(view, idleColour)}`
      : `App ${view.app} has no ${idleColour} Deployment: add one to Git (a copy of ${name}'s manifest with ${view.slotKey}: ${idleColour}), make this change there, and once it is rolled out, ${gitSwitchEdit(view, idleColour)}`;
    return deny(
      `Deployment ${name} is the live colour (${view.live}) of app ${view.app}, which is ${declaredPhrase(by)}: ` +
        `its pod template cannot change in place (this ${summary}), and kube-bluegreen does not redirect a change that the next sync would undo. Nothing was changed. ${where}`,
    );
  }
  return deny(
    `Deployment ${name} is the live colour (${view.live}) of app ${view.app}, and ${by.how} declares both colours: ` +
      `this ${summary} cannot change it in place, and a redirect to ${idleName} would be set back by the next 'helm upgrade'. Nothing was changed. ` +
      `Make the change in the values of the idle colour (${idleColour}, Deployment ${idleName}) and run 'helm upgrade'; once it is rolled out, switch with the value that makes Service ${svc} select ${view.slotKey}=${idleColour}`,
  );
}

/** Git declaring the live label fights the reconciler, which keeps it equal to the active Service. */
function declaredLiveLabelWarnings(req: AdmissionRequest, d: Deployment, view: AppView): string[] {
  const declared = labelsOf(d)[LIVE_LABEL];
  if (declared === undefined || !view.live || !gitApplierOf(req.options)) return [];
  const want = colourOfDeployment(d, view.slotKey) === view.live ? 'true' : 'false';
  if (declared === want) return [];
  return [
    `Git declares label ${LIVE_LABEL}=${declared} on Deployment ${d.metadata.name}, but Service ${view.active?.metadata.name} selects ${view.slotKey}=${view.live}: kube-bluegreen keeps the label equal to the Service; leave it out of Git`,
  ];
}

/** Of the live colour: every Deployment whose pod template carries it receives traffic (duplicates included). */
function isLiveDeployment(d: Deployment, view: AppView): boolean {
  return view.live !== undefined && colourOfDeployment(d, view.slotKey) === view.live;
}

/** A template change to a colour that receives traffic, while the app's state is ambiguous. */
function denyAmbiguous(view: AppView): Decision {
  return deny(`app ${view.app} is in an ambiguous state: ${view.problems[0] ?? 'no Service selects a single colour'}`, 409, 'Conflict');
}

function denyScaleToZero(view: AppView, name: string): Decision {
  const ns = nsFlag(view.namespace);
  return deny(
    `Deployment ${name} is the live colour (${view.live}) of app ${view.app}; scaling it to 0 would take the app down. ` +
      `Switch to ${view.idle} first with 'kubectl bg switch ${view.app}${ns}' (the old colour is scaled down after the delay), or scale to at least 1`,
  );
}

// ---- deployments/scale ------------------------------------------------------

function decideScale(req: AdmissionRequest, view: AppView): Decision {
  if (req.operation !== 'UPDATE') return allow();
  const live = view.live && view.deployments[view.live];
  if (!live || live.metadata.name !== req.name) return allow();
  const replicas = (req.object as Scale).spec?.replicas ?? 0;
  const before = (req.oldObject as Scale).spec?.replicas ?? 0;
  if (replicas === 0 && before !== 0) return denyScaleToZero(view, req.name ?? '');
  return allow();
}

// ---- Services ---------------------------------------------------------------

function decideService(req: AdmissionRequest, stored: AppView, now: Date, ctx: AdmissionContext): Decision {
  if (req.operation === 'DELETE') return allow();
  const svc = req.object as Service;
  // Decided on the app as it will be with this Service: objects come in any order, and this one may
  // be what names the slot key the Deployments use (seed 003: Deployments first, then the Services).
  const view = withService(stored, svc);
  const oldSvc = req.operation === 'UPDATE' ? (req.oldObject as Service) : undefined;
  const slotKey = annotationsOf(svc)[SLOT_LABEL_ANNOTATION] ?? view.slotKey;
  const selector = svc.spec?.selector ?? {};
  const before = oldSvc?.spec?.selector ?? {};
  const enrolling = oldSvc !== undefined && labelsOf(oldSvc)[APP_LABEL] === undefined;
  if (oldSvc && !enrolling && jsonEqual(before, selector)) return allow();
  const name = svc.metadata.name;
  const role = annotationsOf(svc)[ROLE_ANNOTATION];
  const ns = nsFlag(view.namespace);

  const colour = selector[slotKey];
  if (colour === undefined)
    return deny(
      `Service ${name} must keep ${slotKey} in its selector: without it the Service sends traffic to both colours of app ${view.app}. ` +
        `Use 'kubectl bg switch ${view.app}${ns}' to change colours`,
      422,
      'Invalid',
    );
  if (!isColour(colour))
    return deny(`Service ${name} selects ${slotKey}=${colour}, a colour that does not exist; app ${view.app} has ${COLOURS.join(' and ')}`, 422, 'Invalid');
  const target = view.deployments[colour];
  const isActive = role === 'active' || (role !== 'preview' && (view.active === undefined || view.active.metadata.name === name));
  // A new Service, or a preview, moves no traffic away from anything: admitted while the app is
  // still arriving, with a word on what is missing. The checks apply once the whole app exists.
  const arriving = !oldSvc || enrolling || !isActive;
  if (!target) {
    if (arriving)
      return allow([`Service ${name} selects ${slotKey}=${colour}, and app ${view.app} has no ${colour} Deployment yet; it gets endpoints once that exists`]);
    return deny(
      `Service ${name} selects ${slotKey}=${colour}, but app ${view.app} has no ${colour} Deployment; ` +
        `create it with 'kubectl bg init ${view.app}${ns} --from deployment/<name>'`,
      422,
      'Invalid',
    );
  }
  if (!isActive || before[slotKey] === colour) return allow();
  if (!oldSvc) {
    const ready = readyToServe(target, target.spec?.replicas ?? 1);
    return allow(
      ready.ok ? [] : [`Service ${name} is new and sends app ${view.app}'s traffic to ${colour}, which is not fully available yet: ${ready.reason}`],
    );
  }

  // The active Service is about to send traffic to `colour`.
  const override = annotationsOf(svc)[FORCE_SWITCH_ANNOTATION] === colour;
  const current = before[slotKey];
  const currentD = isColour(current) ? view.deployments[current] : undefined;
  const required = currentD?.spec?.replicas ?? target.spec?.replicas ?? 1;
  // The check's exemption for a rollback ("the version live before the last switch") is judged on the
  // history as stored: the request appends its own record (a rollback's from is not the target).
  const storedView = withService(stored, oldSvc);
  const readiness = switchReadiness(view, colour, target, required, now, (d, phase) => readCheck(d, phase, ctx.seal), storedView);
  const why = readiness.ok ? undefined : readiness.reason;
  // A person switching an app that Git declares: the next sync sets the selector back.
  const declarer = gitApplierOf(req.options) ? undefined : declarerOfApp(view);
  const fromItself = declarer?.tool === 'helm' && fieldManagerOf(req.options) === HELM_FIELD_MANAGER;
  const gitNote =
    declarer && !fromItself
      ? [
          `app ${view.app} is ${declaredPhrase(declarer)}: ${nextRound(declarer)} sets Service ${name}'s selector back; switch ${switchWith(declarer, view, colour)} instead`,
        ]
      : [];
  if (!why) return allow(gitNote);
  if (override) return allow([`switched Service ${name} to ${colour} by explicit override (${FORCE_SWITCH_ANNOTATION}=${colour}) although ${why}`, ...gitNote]);
  return deny(
    `Service ${name} cannot send app ${view.app}'s traffic to ${colour} yet: ${why}. ` +
      `Wait with 'kubectl bg status ${view.app}${ns} --watch', then 'kubectl bg switch ${view.app}${ns}'; ` +
      `to override, 'kubectl bg switch ${view.app}${ns} --force' (or set annotation ${FORCE_SWITCH_ANNOTATION}=${colour} in the same patch)`,
  );
}
