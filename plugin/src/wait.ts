// Waiting for the cluster, by polling with the injected clock and sleep, so
// tests run it instantly and --timeout is honoured exactly.
import { readyToServe } from '../../src/core/availability.ts';
import type { Deployment, LabelSelector } from '../../src/core/k8s-types.ts';
import { formatDuration } from '../../src/core/duration.ts';
import type { Context } from './context.ts';
import type { Cluster, Endpoint } from './cluster.ts';
import { CliError, EXIT, timedOut } from './exit-codes.ts';

/** A LabelSelector as the labelSelector query parameter. */
export function selectorString(sel: LabelSelector | undefined): string {
  const parts = Object.entries(sel?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

export interface Poll {
  ctx: Context;
  /** Seconds. */
  timeout: number;
  intervalMs: number;
}

/** Calls check until it is done; on timeout exit 3 with what it waited for, its last state, and the hint if given. */
export async function poll<T>(
  p: Poll,
  what: string,
  check: () => Promise<{ done: true; value: T } | { done: false; state: string }>,
  hint?: string,
): Promise<T> {
  const start = p.ctx.now().getTime();
  const deadline = start + p.timeout * 1000;
  for (;;) {
    const r = await check();
    if (r.done) return r.value;
    if (p.ctx.signal?.aborted) throw new CliError(`interrupted while waiting for ${what} (${r.state})`, EXIT.ERROR);
    if (p.ctx.now().getTime() >= deadline) throw timedOut(`timed out after ${formatDuration(p.timeout)} waiting for ${what}: ${r.state}`, hint);
    await p.ctx.sleep(p.intervalMs, p.ctx.signal);
  }
}

export interface EndpointsResult {
  endpoints: number;
  elapsedMs: number;
}

/**
 * Until the Service's EndpointSlices hold only ready endpoints of the Deployment's
 * pods (and at least one): the moment traffic goes only to that colour.
 */
export async function waitForEndpoints(cluster: Cluster, ns: string, service: string, target: Deployment, p: Poll): Promise<EndpointsResult> {
  const start = p.ctx.now().getTime();
  const podSelector = selectorString(target.spec?.selector);
  const n = await poll(p, `the EndpointSlices of Service ${service} to hold only pods of ${target.metadata.name}`, async () => {
    const [pods, slices] = await Promise.all([cluster.listPods(ns, podSelector), cluster.listEndpointSlices(ns, `kubernetes.io/service-name=${service}`)]);
    const own = new Set(pods.map((x) => x.metadata.name));
    const eps: Endpoint[] = slices.flatMap((s) => s.endpoints ?? []);
    const foreign = eps.filter((e) => !(e.targetRef?.kind === 'Pod' && e.targetRef.name && own.has(e.targetRef.name)));
    const notReady = eps.filter((e) => e.conditions?.ready === false);
    if (eps.length > 0 && foreign.length === 0 && notReady.length === 0) return { done: true, value: eps.length };
    return {
      done: false,
      state: `${eps.length} endpoints, ${foreign.length} of other pods, ${notReady.length} not ready`,
    };
  });
  return { endpoints: n, elapsedMs: p.ctx.now().getTime() - start };
}

/** Until the Deployment is rolled out and available at `replicas` (readyToServe). */
export async function waitForDeployment(cluster: Cluster, ns: string, name: string, replicas: number, p: Poll): Promise<Deployment> {
  return poll(p, `Deployment ${name} to be available at ${replicas} replicas`, async () => {
    const d = await cluster.getDeployment(ns, name);
    if (!d) return { done: false, state: `Deployment ${name} does not exist` };
    const r = readyToServe(d, replicas);
    return r.ok ? { done: true, value: d } : { done: false, state: r.reason };
  });
}
