// Performs a redirect decided by the core: acting on the idle colour on behalf
// of the requesting user. Either the idle colour receives the change, or the
// result says why not (and the user's request is then denied): a change never
// reaches the live colour silently, and the webhook never does with its own
// rights what the user may not do (SubjectAccessReview as request.userInfo).
import { hostname } from 'node:os';
import { colourOfDeployment } from '../core/app.ts';
import { nsFlag } from '../core/commands.ts';
import type { Deployment, Service } from '../core/k8s-types.ts';
import { alreadyRedirected, clearInFlightPatch, idlePatch, inFlightPatch, type RedirectEffect } from '../core/redirect.ts';
import { ApiError, type KubeClient, paths } from '../kube/client.ts';
import type { Logger } from './logger.ts';

export type RedirectResult = { ok: true; attempts: number; warning?: string } | { ok: false; code: number; reason: string; message: string };

export interface RedirectDeps {
  client: KubeClient;
  log: Logger;
  now: () => Date;
  /** Conflicts tolerated before giving up. */
  maxAttempts?: number;
  /** Between attempts: a random pause up to this many ms times the attempt number (concurrent redirects spread out). */
  backoffMs?: number;
}

export async function userMayPatch(client: KubeClient, e: RedirectEffect): Promise<{ allowed: boolean; reason?: string }> {
  const u = e.user;
  const review = await client.create<{ status?: { allowed?: boolean; reason?: string; denied?: boolean } }>(paths.subjectAccessReviews(), {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user: u.username,
      uid: u.uid,
      groups: u.groups,
      extra: u.extra,
      resourceAttributes: { namespace: e.namespace, verb: 'patch', group: 'apps', version: 'v1', resource: 'deployments', name: e.idle.name },
    },
  });
  return { allowed: review.status?.allowed === true, reason: review.status?.reason };
}

async function recordEvents(client: KubeClient, e: RedirectEffect, liveUid: string | undefined, idleUid: string | undefined, now: Date, log: Logger) {
  const who = e.user.username ?? 'unknown user';
  const make = (name: string, uid: string | undefined, reason: string, message: string) => ({
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${name}.`, namespace: e.namespace },
    involvedObject: { apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: e.namespace, uid },
    reason,
    message,
    type: 'Normal',
    source: { component: 'kube-bluegreen' },
    reportingComponent: 'bluegreen.io/webhook',
    reportingInstance: hostname(),
    firstTimestamp: now.toISOString(),
    lastTimestamp: now.toISOString(),
    count: 1,
  });
  const events = [
    make(e.live.name, liveUid, 'ChangeRedirected', `${e.summary} by ${who} redirected to ${e.idle.name} (idle); ${e.live.name} (live) kept its template`),
    make(e.idle.name, idleUid, 'RedirectedChange', `received the ${e.summary} made by ${who} to ${e.live.name} (live); run 'kubectl bg switch ${e.app}${nsFlag(e.namespace)}' when it is ready`),
  ];
  await Promise.all(
    events.map((ev) =>
      client.create(paths.events(e.namespace), ev).catch((err: Error) => log.warn({ err: err.message, deployment: ev.involvedObject.name }, 'could not record an Event')),
    ),
  );
}

export async function performRedirect(deps: RedirectDeps, e: RedirectEffect, liveUid?: string): Promise<RedirectResult> {
  const { client, log } = deps;
  const max = deps.maxAttempts ?? 6;
  const backoff = (attempt: number) => new Promise((r) => setTimeout(r, Math.random() * (deps.backoffMs ?? 100) * attempt));
  const ns = e.namespace;
  const retryHint = `run your command again; if it keeps failing, check 'kubectl bg status ${e.app}${nsFlag(ns)}'`;
  // The in-flight record this call wrote last and has not cleared: a redirect that ends without
  // patching takes it back, or it would hold every switch to the idle colour back for
  // REDIRECT_IN_FLIGHT_SECONDS.
  let written: string | undefined;
  const ending = async (r: RedirectResult): Promise<RedirectResult> => {
    if (written !== undefined)
      await client
        .patch(paths.services(ns, e.activeService), clearInFlightPatch(written), 'json')
        .catch((err: Error) => log.debug({ err: err.message }, 'in-flight record of a failed redirect already replaced or gone'));
    return r;
  };
  try {
    const sar = await userMayPatch(client, e);
    if (!sar.allowed)
      return {
        ok: false,
        code: 403,
        reason: 'Forbidden',
        message:
          `${e.live.name} is the live colour of app ${e.app}, so this ${e.summary} has to go to ${e.idle.name} (idle), ` +
          `and user ${JSON.stringify(e.user.username ?? '')} may not patch deployment ${e.idle.name} in namespace ${ns}. ` +
          `Nothing was changed. Ask for 'patch' on deployments/${e.idle.name}, or have someone who has it make the change`,
      };
    for (let attempt = 1; attempt <= max; attempt++) {
      if (attempt > 1) await backoff(attempt - 1);
      const svc = await client.get<Service>(paths.services(ns, e.activeService));
      const live = svc.spec?.selector?.[e.slotKey];
      if (live !== e.live.colour)
        return ending({
          ok: false,
          code: 409,
          reason: 'Conflict',
          message: `app ${e.app} switched to ${live} while this change was being redirected; nothing was changed. Run your command again`,
        });
      // Read the idle colour before recording anything: its generation is the precondition of the patch.
      const idle = await client.get<Deployment>(paths.deployments(ns, e.idle.name));
      if (colourOfDeployment(idle, e.slotKey) !== e.idle.colour)
        return ending({ ok: false, code: 409, reason: 'Conflict', message: `${e.idle.name} is no longer the ${e.idle.colour} Deployment of app ${e.app}; nothing was changed` });
      // The same change arriving again (the apiserver re-runs admission when its own update retries) is done already.
      const done = alreadyRedirected(idle, e, deps.now());
      if (done === 'current') return ending({ ok: true, attempts: attempt });
      if (done === 'superseded')
        return ending({ ok: true, attempts: attempt, warning: `${e.idle.name} has received a newer change since this one reached it; check 'kubectl bg status ${e.app}${nsFlag(ns)}'` });
      const { patch: record, value: recordValue } = inFlightPatch(svc, e, deps.now());
      try {
        await client.patch(paths.services(ns, e.activeService), record, 'merge');
        written = recordValue;
        await client.patch(paths.deployments(ns, e.idle.name), idlePatch(idle, e, deps.now()), 'json');
      } catch (err) {
        // 409: a conflicting write (the Service moved: maybe a switch); 422: a test of the idle patch
        // failed (its spec changed meanwhile). Both: read again and start over.
        if (err instanceof ApiError && (err.status === 409 || err.status === 422)) {
          if (attempt < max) continue;
          break;
        }
        throw err;
      }
      // The idle colour now has the change (and is rolling out, so not ready): the record has done its job.
      written = undefined;
      await client
        .patch(paths.services(ns, e.activeService), clearInFlightPatch(recordValue), 'json')
        .catch((err: Error) => log.debug({ err: err.message }, 'in-flight record already replaced or gone'));
      await recordEvents(client, e, liveUid, idle.metadata.uid, deps.now(), log);
      return { ok: true, attempts: attempt };
    }
    return ending({ ok: false, code: 409, reason: 'Conflict', message: `${e.idle.name} kept changing while this change was being redirected; nothing reached ${e.live.name}. ${retryHint}` });
  } catch (err) {
    const msg = err instanceof ApiError ? `${err.status} ${err.message}` : (err as Error).message;
    log.error({ err: msg, app: e.app, namespace: ns, idle: e.idle.name }, 'redirect failed');
    return ending({
      ok: false,
      code: 500,
      reason: 'InternalError',
      message: `could not redirect this ${e.summary} to ${e.idle.name} (idle): ${msg}; ${e.live.name} (live) was not changed. ${retryHint}`,
    });
  }
}
