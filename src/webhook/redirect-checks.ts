// What is checked, without writing anything, before a redirect is admitted, so
// the user's command fails at once with the reason: may this user patch the
// idle Deployment (a SubjectAccessReview as request.userInfo: the webhook never
// does with its own rights what the user may not), and would the idle
// Deployment accept the change (a server-side dry run of the same patch the
// reconciler applies later). Both at once, within the request's deadline.
import { createHash } from 'node:crypto';
import { nsFlag } from '../core/commands.ts';
import type { RedirectCheck } from '../core/admission/decide.ts';
import { ApiError, isStatus, isPatchTestFailure } from '../kube/errors.ts';
import type { WebhookCluster } from './cluster.ts';

export type CheckResult = { ok: true } | { ok: false; code: number; reason: string; message: string };

/**
 * Checks that passed, kept a few seconds. The API server runs admission again each time its update
 * of a contended object must be retried; the same user, the same change and the same idle
 * Deployment need not be asked about twice in a row. Only passes are kept: a refusal is asked
 * again, so a right granted a moment ago counts at once.
 */
export class PassedChecks {
  private readonly passed = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly now: () => number;
  constructor(ttlMs = 5_000, now: () => number = Date.now) {
    this.ttlMs = ttlMs;
    this.now = now;
  }
  static key(c: RedirectCheck): string {
    const u = c.user;
    return createHash('sha256')
      .update(JSON.stringify([u.username, u.uid, u.groups, u.extra, c.namespace, c.idle.name, c.idleOps]))
      .digest('base64url');
  }
  has(key: string): boolean {
    const at = this.passed.get(key);
    if (at === undefined) return false;
    if (this.now() - at < this.ttlMs) return true;
    this.passed.delete(key);
    return false;
  }
  add(key: string): void {
    if (this.passed.size > 10_000) this.passed.clear();
    this.passed.set(key, this.now());
  }
}

export async function checkRedirect(cluster: WebhookCluster, c: RedirectCheck, signal: AbortSignal, passed?: PassedChecks): Promise<CheckResult> {
  const key = passed ? PassedChecks.key(c) : '';
  if (passed?.has(key)) return { ok: true };
  const r = await checkNow(cluster, c, signal);
  if (r.ok) passed?.add(key);
  return r;
}

async function checkNow(cluster: WebhookCluster, c: RedirectCheck, signal: AbortSignal): Promise<CheckResult> {
  const ns = c.namespace;
  const nothing = `Nothing was changed: ${c.live.name} (live) keeps its template`;
  const [sar, dry] = await Promise.allSettled([
    cluster.mayPatchDeployment(c.user, ns, c.idle.name, { signal }),
    cluster.patchDeployment(ns, c.idle.name, c.idleOps, 'json', { dryRun: true, signal }),
  ]);
  if (signal.aborted) return timedOut(c, nothing);
  if (sar.status === 'rejected') return failed(c, 'ask whether you may change it', sar.reason, nothing);
  if (!sar.value.allowed)
    return {
      ok: false,
      code: 403,
      reason: 'Forbidden',
      message:
        `${c.live.name} is the live colour of app ${c.app}, so this ${c.summary} has to go to ${c.idle.name} (idle), ` +
        `and user ${JSON.stringify(c.user.username ?? '')} may not patch deployment ${c.idle.name} in namespace ${ns}. ` +
        `${nothing}. Ask for 'patch' on deployments/${c.idle.name}, or have someone who has it make the change`,
    };
  if (dry.status === 'rejected') {
    const e = dry.reason as unknown;
    if (isStatus(e, 404)) return { ok: false, code: 409, reason: 'Conflict', message: `${c.idle.name}, the idle colour of app ${c.app}, is gone. ${nothing}` };
    if (isPatchTestFailure(e))
      return {
        ok: false,
        code: 409,
        reason: 'Conflict',
        message: `${c.idle.name} is no longer the ${c.idle.colour} Deployment of app ${c.app}. ${nothing}. Run your command again`,
      };
    if (e instanceof ApiError && (e.status === 422 || e.status === 400 || e.status === 403))
      return {
        ok: false,
        code: e.status,
        reason: e.reason || 'Invalid',
        message: `this ${c.summary} was to go to ${c.idle.name} (idle), which would not accept it: ${e.message}. ${nothing}`,
      };
    return failed(c, 'try it on', e, nothing);
  }
  return { ok: true };
}

function timedOut(c: RedirectCheck, nothing: string): CheckResult {
  return {
    ok: false,
    code: 504,
    reason: 'Timeout',
    message: `could not check in time whether ${c.idle.name} (idle) takes this ${c.summary}. ${nothing}. Run your command again; if it keeps failing, check 'kubectl bg status ${c.app}${nsFlag(c.namespace)}'`,
  };
}

function failed(c: RedirectCheck, what: string, e: unknown, nothing: string): CheckResult {
  const msg = e instanceof ApiError ? `${e.status} ${e.message}` : (e as Error).message;
  return {
    ok: false,
    code: 500,
    reason: 'InternalError',
    message: `could not ${what} for ${c.idle.name} (idle): ${msg}. ${nothing}. Run your command again; if it keeps failing, check 'kubectl bg status ${c.app}${nsFlag(c.namespace)}'`,
  };
}
