// From an HTTP body to an AdmissionReview answer: read, find the app's view,
// decide (pure core), perform the side effect unless dry-run, respond.
import type { AppView } from '../core/app.ts';
import { type Decision, decide, type Endpoint, requestApp, requestTarget } from '../core/admission/decide.ts';
import { type AdmissionRequest, type AdmissionResponse, type AdmissionReviewOut, readAdmissionReview, reviewOut } from '../core/admission/review.ts';
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

/**
 * Answers one AdmissionReview. Synchronous unless the answer waits on the cluster (a redirect, a fresh
 * read of the app), so the common request costs no promise and no extra turn of the event loop.
 */
export function handleAdmission(endpoint: Endpoint, body: unknown, deps: HandlerDeps): HandlerResult | Promise<HandlerResult> {
  const read = readAdmissionReview(body);
  if (!read.ok) {
    deps.metrics?.badRequests.inc({ reason: 'malformed' });
    return badRequest(read.uid, `malformed AdmissionReview: ${read.message}`);
  }
  const req = read.request;
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
  if (app && deps.freshView && target.type === 'service' && req.operation === 'UPDATE' && endpoint === 'validate' && selectorChanged(req))
    return deps.freshView(ns, app).then((view) => decideAndAnswer(endpoint, req, app, view, deps));
  return decideAndAnswer(endpoint, req, app, app ? deps.cache.view(ns, app) : undefined, deps);
}

function decideAndAnswer(
  endpoint: Endpoint,
  req: AdmissionRequest,
  app: string | undefined,
  view: AppView | undefined,
  deps: HandlerDeps,
): HandlerResult | Promise<HandlerResult> {
  let decision: Decision;
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
  const ctx: LogContext = {
    uid: req.uid,
    endpoint,
    op: req.operation,
    kind: req.kind.kind,
    namespace: req.namespace ?? '',
    name: req.name,
    app,
    dryRun: req.dryRun === true,
    user: req.userInfo.username,
  };
  if (decision.allowed && decision.effect) {
    const effect = decision.effect;
    if (!req.dryRun)
      return deps.redirect(effect, (req.object as Deployment).metadata.uid).then((done) => {
        deps.metrics?.redirects.inc({ result: done.ok ? 'done' : 'failed' });
        if (!done.ok) {
          const response: AdmissionResponse = { uid: req.uid, allowed: false, status: { code: done.code, reason: done.reason, message: done.message } };
          return answer(endpoint, { ...ctx, reason: done.reason }, 'denied', response, done.message, deps);
        }
        if (done.warning) decision.warnings.push(done.warning);
        return allowed(endpoint, ctx, decision, deps);
      });
    deps.metrics?.redirects.inc({ result: 'dry-run' });
  }
  if (decision.allowed) return allowed(endpoint, ctx, decision, deps);
  const response: AdmissionResponse = { uid: req.uid, allowed: false, status: { code: decision.code, reason: decision.reason, message: decision.message } };
  if (decision.warnings.length) response.warnings = decision.warnings;
  return answer(endpoint, { ...ctx, reason: decision.reason }, decision.outcome, response, decision.message, deps);
}

type LogContext = Record<string, string | boolean | undefined>;

function allowed(endpoint: Endpoint, ctx: LogContext, decision: Decision & { allowed: true }, deps: HandlerDeps): HandlerResult {
  const response: AdmissionResponse = { uid: ctx.uid as string, allowed: true };
  if (decision.patch?.length) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(decision.patch)).toString('base64');
  }
  if (decision.effect) response.auditAnnotations = { 'redirected-to': decision.effect.idle.name };
  if (decision.warnings.length) response.warnings = decision.warnings;
  if (decision.effect) return answer(endpoint, { ...ctx, to: decision.effect.idle.name }, decision.outcome, response, decision.warnings[0] ?? 'redirected', deps);
  return answer(endpoint, ctx, decision.outcome, response, undefined, deps);
}

/** Counts the decision, logs it (at info when it changed or refused something), and wraps the response. */
function answer(endpoint: Endpoint, ctx: LogContext, outcome: string, response: AdmissionResponse, message: string | undefined, deps: HandlerDeps): HandlerResult {
  if (message !== undefined) deps.log.info({ ...ctx, outcome }, message);
  else if (deps.log.isLevelEnabled('debug')) deps.log.debug({ ...ctx, outcome }, 'allowed');
  deps.metrics?.decisions.inc({ endpoint, outcome });
  return { status: 200, body: reviewOut(response) };
}
