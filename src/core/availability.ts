// Is a colour fully rolled out and available? The same rule serves the webhook
// (refusing a Service selector aimed at a colour that is not ready) and
// `kubectl bg switch` (refusing to switch to it).
import type { Deployment } from './k8s-types.ts';

export interface Availability {
  desired: number;
  current: number;
  updated: number;
  ready: number;
  available: number;
  /** The controller has seen the latest spec. */
  observed: boolean;
}

export function availabilityOf(d: Deployment): Availability {
  const st = d.status ?? {};
  return {
    desired: d.spec?.replicas ?? 1,
    current: st.replicas ?? 0,
    updated: st.updatedReplicas ?? 0,
    ready: st.readyReplicas ?? 0,
    available: st.availableReplicas ?? 0,
    observed: (st.observedGeneration ?? 0) >= (d.metadata.generation ?? 0),
  };
}

export type Readiness = { ok: true } | { ok: false; reason: string };

/**
 * Ready to take traffic at `required` replicas: the controller has observed the
 * current spec, every pod runs the current template (no old ReplicaSet's pods
 * left to receive traffic), and at least `required` (and at least one) are
 * available.
 */
export function readyToServe(d: Deployment, required: number): Readiness {
  const a = availabilityOf(d);
  const name = d.metadata.name;
  const need = Math.max(required, 1);
  if (!a.observed) return { ok: false, reason: `${name} is still rolling out (its controller has not observed generation ${d.metadata.generation})` };
  if (d.spec?.paused) return { ok: false, reason: `${name} is paused` };
  if (a.desired < need) return { ok: false, reason: `${name} is scaled to ${a.desired} replicas, fewer than the ${need} the live colour runs` };
  if (a.updated < a.desired || a.current > a.updated)
    return { ok: false, reason: `${name} is still rolling out (${a.updated} of ${a.desired} pods updated, ${a.current} running)` };
  if (a.available < need) return { ok: false, reason: `${name} has ${a.available}/${need} available replicas` };
  return { ok: true };
}
