// From an HTTP body to an AdmissionReview answer: read, find the app's view,
// decide (pure core), perform the side effect unless dry-run, respond.
import type { AppView } from '../core/app.ts';
import { decide, type Endpoint, requestApp, requestTarget } from '../core/admission/decide.ts';
import { type AdmissionResponse, type AdmissionReviewOut, readAdmissionReview, reviewOut } from '../core/admission/review.ts';
import type { Deployment } from '../core/k8s-types.ts';
import type { RedirectEffect } from '../core/redirect.ts';
import { jsonEqual } from '../core/template.ts';
import type { AppCache } from './cache.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import type { RedirectResult } from './redirect-executor.ts';

export interface HandlerDeps {
  cache: AppCache;
  log: Logger;
  metrics?: Metrics;
  now: () => Date;
  redirect: (e: RedirectEffect, liveUid: string | undefined) => Promise<RedirectResult>;
  /** A fresh read of one app, for the rare requests where a stale cache could let a bad switch through. */
  freshView?: (namespace: string, app: string) => Promise<AppView | undefined>;
}

export interface HandlerResult {
  status: number;
  body: AdmissionReviewOut;
}

function badRequest(uid: string | undefined, message: string, status = 400): HandlerResult {
  return { status, body: reviewOut({ uid: uid ?? '', allowed: false, status: { code: status, reason: 'BadRequest', message } }) };
}

function selectorChanged(req: { object?: unknown; oldObject?: unknown }): boolean {
  const sel = (o: unknown) => (o as { spec?: { selector?: unknown } } | undefined)?.spec?.selector ?? null;
  return !jsonEqual(sel(req.object), sel(req.oldObject));
}

export async function handleAdmission(endpoint: Endpoint, body: unknown, deps: HandlerDeps): Promise<HandlerResult> {
  const read = readAdmissionReview(body);
  if (!read.ok) {
    deps.metrics?.badRequests.inc({ reason: 'malformed' });
    return badRequest(read.uid, `malformed AdmissionReview: ${read.message}`);
  }
  const req = read.request;
  const log = deps.log;
  deps.metrics?.requests.inc({ endpoint, resource: `${req.resource.resource}${req.subResource ? `/${req.subResource}` : ''}`, operation: req.operation });
  const target = requestTarget(req);
  if (target.type === 'invalid') {
    deps.metrics?.badRequests.inc({ reason: 'unexpected-kind' });
    return badRequest(req.uid, target.message);
  }
  const ns = req.namespace ?? '';
  const app = target.type === 'scale' ? deps.cache.appOfDeployment(ns, req.name ?? '') : requestApp(req);
  if (app && !deps.cache.synced) {
    // Blind: better to fail (the apiserver applies the failurePolicy) than to let a live change through.
    return badRequest(req.uid, 'kube-bluegreen is starting and has not read the cluster yet; try again in a moment', 503);
  }
  let view = app ? deps.cache.view(ns, app) : undefined;
  if (app && deps.freshView && target.type === 'service' && req.operation === 'UPDATE' && endpoint === 'validate' && selectorChanged(req))
    view = await deps.freshView(ns, app);

  let decision: ReturnType<typeof decide>;
  try {
    decision = decide(endpoint, req, view, deps.now());
  } catch (e) {
    // The review was well formed but an object inside it is not (a field of the wrong type, absurd nesting).
    deps.metrics?.badRequests.inc({ reason: 'malformed-object' });
    return badRequest(req.uid, `malformed AdmissionReview: the ${req.kind.kind} in it could not be read (${(e as Error).message})`);
  }
  if (decision.outcome === 'invalid') {
    deps.metrics?.badRequests.inc({ reason: 'unexpected' });
    return badRequest(req.uid, decision.message);
  }
  const ctx = { uid: req.uid, endpoint, op: req.operation, kind: req.kind.kind, namespace: ns, name: req.name, app, dryRun: req.dryRun === true, user: req.userInfo.username };
  let response: AdmissionResponse;
  let outcome: string = decision.outcome;
  if (decision.allowed) {
    response = { uid: req.uid, allowed: true };
    if (decision.effect && !req.dryRun) {
      const done = await deps.redirect(decision.effect, (req.object as Deployment).metadata.uid);
      deps.metrics?.redirects.inc({ result: done.ok ? 'done' : 'failed' });
      if (!done.ok) {
        outcome = 'denied';
        response = { uid: req.uid, allowed: false, status: { code: done.code, reason: done.reason, message: done.message } };
        log.info({ ...ctx, outcome, reason: done.reason }, done.message);
        deps.metrics?.decisions.inc({ endpoint, outcome });
        return { status: 200, body: reviewOut(response) };
      }
      if (done.warning) decision.warnings.push(done.warning);
    } else if (decision.effect) deps.metrics?.redirects.inc({ result: 'dry-run' });
    if (decision.patch?.length) {
      response.patchType = 'JSONPatch';
      response.patch = Buffer.from(JSON.stringify(decision.patch)).toString('base64');
    }
    if (decision.effect) response.auditAnnotations = { 'redirected-to': decision.effect.idle.name };
    if (decision.warnings.length) response.warnings = decision.warnings;
    if (decision.effect) log.info({ ...ctx, outcome, to: decision.effect.idle.name }, decision.warnings[0] ?? 'redirected');
    else if (log.isLevelEnabled('debug')) log.debug({ ...ctx, outcome }, 'allowed');
  } else {
    response = { uid: req.uid, allowed: false, status: { code: decision.code, reason: decision.reason, message: decision.message } };
    if (decision.warnings.length) response.warnings = decision.warnings;
    log.info({ ...ctx, outcome, reason: decision.reason }, decision.message);
  }
  deps.metrics?.decisions.inc({ endpoint, outcome });
  return { status: 200, body: reviewOut(response) };
}
