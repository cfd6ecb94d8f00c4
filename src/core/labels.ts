// The enrolment contract: every label and annotation kube-bluegreen reads or writes.
// See README "Labels and annotations".

/** Label on every object of an app: its name. Webhook configurations select on it. */
export const APP_LABEL = 'bluegreen.io/app';
/** Annotation naming the slot label key (default `slot`); read from the active Service, then the Deployments. */
export const SLOT_LABEL_ANNOTATION = 'bluegreen.io/slot-label';
/** Annotation on a Service: `active` (carries traffic) or `preview` (follows the idle colour). */
export const ROLE_ANNOTATION = 'bluegreen.io/role';
/** Label on each Deployment: "true" on the live colour, "false" on the idle one. Kept by every switch; the cluster policy reads it. */
export const LIVE_LABEL = 'bluegreen.io/live';
/** Annotation on the active Service: the switch history, a JSON array (newest last). */
export const HISTORY_ANNOTATION = 'bluegreen.io/history';
/** Annotation on the active Service: how long the old colour stays warm after a switch (e.g. `10m`, `0s`). */
export const SCALE_DOWN_DELAY_ANNOTATION = 'bluegreen.io/scale-down-delay';
/** Annotation on the active Service: when the old colour is due to be scaled down (RFC 3339), set by a switch. */
export const SCALE_DOWN_AT_ANNOTATION = 'bluegreen.io/scale-down-at';
/** Annotation on the active Service: the explicit override. A selector change to colour X is admitted although X is not fully available when this annotation equals X. */
export const FORCE_SWITCH_ANNOTATION = 'bluegreen.io/force-switch-to';

/**
 * Annotation on the live Deployment: a change to its pod template that the webhook redirected, as
 * the user's own request stored it (the webhook only patches that request: the live template stays,
 * the requested one is recorded here, signed). The reconciler applies it to the idle colour and
 * removes it. Written only by kube-bluegreen: a request that changes it otherwise is refused, or the
 * change is undone. See src/core/pending-change.ts.
 */
export const PENDING_CHANGE_ANNOTATION = 'bluegreen.io/pending-change';
/**
 * Annotation the reconciler sets on the colour a recorded change went to, in the same patch as the
 * change: which request, from where, by whom, and whether it was applied (or why not). JSON.
 */
export const LAST_CHANGE_ANNOTATION = 'bluegreen.io/last-change';
/**
 * Annotation the reconciler sets on the idle colour when it raises it to the replicas an HPA runs the
 * live colour at (src/core/hpa.ts): the generation that raise produced. The scale-down after a switch
 * takes that generation for its own change, not one by hand.
 */
export const RAISED_GENERATION_ANNOTATION = 'bluegreen.io/raised-generation';
/** Kubernetes' limit on the total size of an object's annotations. */
export const ANNOTATIONS_MAX_BYTES = 256 * 1024;

export const DEFAULT_SLOT_LABEL = 'slot';
export const DEFAULT_SCALE_DOWN_DELAY_SECONDS = 600;

/** Annotation `kubectl rollout restart` sets on the pod template. */
export const RESTARTED_AT_ANNOTATION = 'kubectl.kubernetes.io/restartedAt';

export const COLOURS = ['blue', 'green'] as const;
export type Colour = (typeof COLOURS)[number];

export function isColour(v: unknown): v is Colour {
  return v === 'blue' || v === 'green';
}

export function otherColour(c: Colour): Colour {
  return c === 'blue' ? 'green' : 'blue';
}

/**
 * The group whose requests every kube-bluegreen webhook skips (matchConditions), and which
 * `kubectl bg ... --break-glass` impersonates while no webhook replica answers. The cluster
 * policy applies to it like to anyone.
 */
export const BREAK_GLASS_GROUP = 'kube-bluegreen:break-glass';
