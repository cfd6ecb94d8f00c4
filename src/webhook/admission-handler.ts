// From an HTTP body to an AdmissionReview answer: read, find the app's view,
// decide (pure core), run the checks a redirect needs (reads only), respond.
// Nothing here writes to the cluster: a redirect is the user's own request,
// patched to keep the live template and to carry the record the reconciler applies.
import { type AppView, resolveApp } from '../core/app.ts';
import { type AdmissionContext, type Decision, decide, type Endpoint, requestApp, requestTarget } from '../core/admission/decide.ts';
import { type AdmissionRequest, type AdmissionResponse, type AdmissionReviewOut, readAdmissionReview, refusal, reviewOut } from '../core/admission/review.ts';
import type { Scale } from '../core/k8s-types.ts';
import { jsonEqual } from '../core/template.ts';
import { type AppCache, knownObjects } from './cache.ts';
import type { WebhookCluster } from './cluster.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { checkRedirect, type PassedChecks } from './redirect-checks.ts';

export interface HandlerDeps {
  cache: AppCache;
  log: Logger;
  metrics?: Metrics;
  now: () => Date;
  admission: AdmissionContext;
  /** Reads for the admission-time checks and fresh views. Without it a redirect is refused (nothing can be checked). */
  cluster?: WebhookCluster;
  /** Redirect checks that passed a moment ago (the API server's retries ask again). */
  passedChecks?: PassedChecks;
}

export interface HandlerOptions {
  /** The time the API server gives this call (its `timeout` query parameter). */
  timeoutMs?: number;
}

export interface HandlerResult {
  status: number;
  body: AdmissionReviewOut;
}

/** Time kept back from the API server's timeout for the answer to travel. */
const DEADLINE_MARGIN_MS = 500;
const DEFAULT_TIMEOUT_MS = 10_000;

/** The one builder of AdmissionReview answers that are not a decision: 400 for what cannot be read, 503 while blind. */
export function errorReview(uid: string | undefined, message: string, status = 400): HandlerResult {
  return { status, body: reviewOut(refusal(uid, status, message)) };
}

const specOf = (o: unknown) => (o as { spec?: { selector?: unknown; template?: unknown; replicas?: unknown } } | undefined)?.spec;

/**
 * Requests whose answer must not rest on the cache alone: a selector change of a Service (a switch
 * to a colour that is not ready, or that has a change pending), scaling a Deployment to 0, and a
 * template change of a colour the cache calls idle (a switch may have made it live a moment ago).
 */
function needsFreshView(endpoint: Endpoint, req: AdmissionRequest, type: 'deployment' | 'scale' | 'service'): boolean {
  if (endpoint !== 'validate' || req.operation !== 'UPDATE') return false;
  const now = specOf(req.object);
  const before = specOf(req.oldObject);
  if (type === 'service') return !jsonEqual(now?.selector ?? null, before?.selector ?? null);
  if (type === 'scale') return (req.object as Scale).spec?.replicas === 0;
  // A dry run lands nowhere: the cache answers (the redirect's own dry run of the idle patch takes this path).
  if (req.dryRun) return false;
  return now?.replicas === 0 || !jsonEqual(now?.template ?? null, before?.template ?? null);
}

/**
 * Answers one AdmissionReview. Synchronous unless the answer waits on the cluster (a redirect's
 * checks, a fresh read of the app), so the common request costs no promise and no extra turn of
 * the event loop.
 */
export function handleAdmission(endpoint: Endpoint, body: unknown, deps: HandlerDeps, opts: HandlerOptions = {}): HandlerResult | Promise<HandlerResult> {
  const read = readAdmissionReview(body);
  if (!read.ok) {
    deps.metrics?.badRequests.inc({ reason: 'malformed' });
    return errorReview(read.uid, `malformed AdmissionReview: ${read.message}`);
  }
  const req = read.request;
  deps.metrics?.requests.inc({ endpoint, resource: `${req.resource.resource}${req.subResource ? `/${req.subResource}` : ''}`, operation: req.operation });
  const target = requestTarget(req);
  if (target.type === 'invalid') {
    deps.metrics?.badRequests.inc({ reason: 'unexpected-kind' });
    return errorReview(req.uid, target.message);
  }
  const ns = req.namespace ?? '';
  const app = target.type === 'scale' ? deps.cache.appOfDeployment(ns, req.name ?? '') : requestApp(req);
  if (app && !deps.cache.synced) {
    // Blind: better to fail (the apiserver applies the failurePolicy) than to let a live change through.
    return errorReview(req.uid, 'kube-bluegreen is starting and has not read the cluster yet; try again in a moment', 503);
  }
  const cluster = deps.cluster;
  // The reconciler's own writes (it read the app afresh and guards each patch with preconditions)
  // need no second fresh read.
  const self = deps.admission.self !== undefined && req.userInfo.username === deps.admission.self && target.type === 'deployment';
  if (app && cluster && !self && needsFreshView(endpoint, req, target.type)) {
    const signal = deadline(opts);
    // By name, a GET of each object the cache files under the app: each as fresh as a LIST, without
    // the LIST's wait for the API server's watch cache (see ReadAppOptions).
    const known = knownObjects(deps.cache, ns, app);
    return cluster.readApp(ns, app, known ? { signal, known } : { signal }).then(
      (objs) => decideAndAnswer(endpoint, req, app, objs.deployments.length || objs.services.length ? resolveApp(objs) : undefined, deps, signal),
      (e: Error) => unavailable(endpoint, req, app, deps, `could not read app ${app} afresh to check this change: ${e.message}`),
    );
  }
  return decideAndAnswer(endpoint, req, app, app ? deps.cache.view(ns, app) : undefined, deps, undefined, opts);
}

function deadline(opts: HandlerOptions): AbortSignal {
  return AbortSignal.timeout(Math.max(100, (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) - DEADLINE_MARGIN_MS));
}

function unavailable(endpoint: Endpoint, req: AdmissionRequest, app: string | undefined, deps: HandlerDeps, message: string): HandlerResult {
  const response: AdmissionResponse = {
    uid: req.uid,
    allowed: false,
    status: { code: 500, reason: 'InternalError', message: `${message}; nothing was changed. Run your command again` },
  };
  return answer(endpoint, { ...logContext(endpoint, req, app), reason: 'InternalError' }, 'denied', response, message, deps);
}

function logContext(endpoint: Endpoint, req: AdmissionRequest, app: string | undefined): LogContext {
  return {
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
}

function decideAndAnswer(
  endpoint: Endpoint,
  req: AdmissionRequest,
  app: string | undefined,
  view: AppView | undefined,
  deps: HandlerDeps,
  signal?: AbortSignal,
  opts: HandlerOptions = {},
): HandlerResult | Promise<HandlerResult> {
  let decision: Decision;
  try {
    decision = decide(endpoint, req, view, deps.now(), deps.admission);
  } catch (e) {
    // The review was well formed but an object inside it is not (a field of the wrong type, absurd nesting).
    deps.metrics?.badRequests.inc({ reason: 'malformed-object' });
    return errorReview(req.uid, `malformed AdmissionReview: the ${req.kind.kind} in it could not be read (${(e as Error).message})`);
  }
  if (decision.outcome === 'invalid') {
    deps.metrics?.badRequests.inc({ reason: 'unexpected' });
    return errorReview(req.uid, decision.message);
  }
  const ctx = logContext(endpoint, req, app);
  if (decision.allowed && decision.check) {
    const check = decision.check;
    if (!deps.cluster) return unavailable(endpoint, req, app, deps, 'this webhook has no cluster connection to check a redirect');
    return checkRedirect(deps.cluster, check, signal ?? deadline(opts), deps.passedChecks).then((done) => {
      deps.metrics?.redirects.inc({ result: done.ok ? (req.dryRun ? 'dry-run' : 'recorded') : 'refused' });
      if (!done.ok) {
        const response = refusal(req.uid, done.code, done.message, done.reason);
        return answer(endpoint, { ...ctx, reason: done.reason }, 'denied', response, done.message, deps);
      }
      return allowed(endpoint, ctx, decision, deps);
    });
  }
  if (decision.allowed) return allowed(endpoint, ctx, decision, deps);
  const response = refusal(req.uid, decision.code, decision.message, decision.reason);
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
  if (decision.check) response.auditAnnotations = { 'redirected-to': decision.check.idle.name };
  if (decision.warnings.length) response.warnings = decision.warnings;
  if (decision.check) return answer(endpoint, { ...ctx, to: decision.check.idle.name }, decision.outcome, response, decision.warnings[0] ?? 'redirected', deps);
  if (decision.patch?.length && decision.warnings.length) return answer(endpoint, ctx, decision.outcome, response, decision.warnings[0], deps);
  return answer(endpoint, ctx, decision.outcome, response, undefined, deps);
}

/** Counts the decision, logs it (at info when it changed or refused something), and wraps the response. */
function answer(
  endpoint: Endpoint,
  ctx: LogContext,
  outcome: string,
  response: AdmissionResponse,
  message: string | undefined,
  deps: HandlerDeps,
): HandlerResult {
  if (message !== undefined) deps.log.info({ ...ctx, outcome }, message);
  else if (deps.log.isLevelEnabled('debug')) deps.log.debug({ ...ctx, outcome }, 'allowed');
  deps.metrics?.decisions.inc({ endpoint, outcome });
  return { status: 200, body: reviewOut(response) };
}
