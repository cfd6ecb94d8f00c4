// Resolves the objects of one app (its Deployments and Services, as read from
// the cluster) into the view every decision works from: the slot label key,
// the active and preview Services, the live colour and one Deployment per colour.
import type { Deployment, HorizontalPodAutoscaler, Service } from './k8s-types.ts';
import { annotationsOf, labelsOf } from './k8s-types.ts';
import { APP_LABEL, type Colour, DEFAULT_SLOT_LABEL, isColour, otherColour, ROLE_ANNOTATION, SLOT_LABEL_ANNOTATION } from './labels.ts';

export interface AppObjects {
  namespace: string;
  app: string;
  deployments: readonly Deployment[];
  services: readonly Service[];
  /** The app's HorizontalPodAutoscalers (labelled for the app like its other objects); absent: none read. */
  hpas?: readonly HorizontalPodAutoscaler[];
}

export interface AppView {
  namespace: string;
  app: string;
  slotKey: string;
  /** The Service carrying users' traffic, if it can be told. */
  active?: Service;
  previews: Service[];
  /** The colour the active Service selects; undefined when there is no active Service or it names no valid colour. */
  live?: Colour;
  idle?: Colour;
  deployments: Partial<Record<Colour, Deployment>>;
  /** Deployments left out of `deployments` because their colour already had one. */
  duplicates: Deployment[];
  /** Every Service of the app (active, preview and unmarked ones). */
  services: Service[];
  /** The app's HorizontalPodAutoscalers, not being deleted (see src/core/hpa.ts). */
  hpas: HorizontalPodAutoscaler[];
  /** Things that make the app's state ambiguous; each a sentence a person can act on. */
  problems: string[];
  /** What it was resolved from. */
  objects: AppObjects;
}

export function appNameOf(o: { metadata?: { labels?: Record<string, string> } } | undefined): string | undefined {
  const v = labelsOf(o)[APP_LABEL];
  return v ? v : undefined;
}

/** The colour a Deployment runs: its pod template's slot label (the selector must agree; the policy checks that). */
export function colourOfDeployment(d: Deployment, slotKey: string): Colour | undefined {
  const v = d.spec?.template?.metadata?.labels?.[slotKey];
  return isColour(v) ? v : undefined;
}

export function serviceRole(s: Service): 'active' | 'preview' | undefined {
  const r = annotationsOf(s)[ROLE_ANNOTATION];
  return r === 'active' || r === 'preview' ? r : undefined;
}

/** The slot key an app's objects name in bluegreen.io/slot-label: the active Service's, else any Service's, else any Deployment's. */
export function annotatedSlotKey(objs: Pick<AppObjects, 'deployments' | 'services'>, active?: Service): string | undefined {
  const fromActive = active && annotationsOf(active)[SLOT_LABEL_ANNOTATION];
  if (fromActive) return fromActive;
  for (const s of objs.services) {
    const v = annotationsOf(s)[SLOT_LABEL_ANNOTATION];
    if (v) return v;
  }
  for (const d of objs.deployments) {
    const v = annotationsOf(d)[SLOT_LABEL_ANNOTATION];
    if (v) return v;
  }
  return undefined;
}

/** The app's slot key: the one its objects name, else `slot`. */
export function slotKeyOf(objs: Pick<AppObjects, 'deployments' | 'services'>, active?: Service): string {
  return annotatedSlotKey(objs, active) ?? DEFAULT_SLOT_LABEL;
}

/**
 * The slot key of a Deployment not enrolled yet: the one label whose value is a colour in both its
 * selector and its pod template (the seeds' `environment=blue`), when there is exactly one.
 */
export function colourKeyOf(d: Deployment): string | undefined {
  const selector = d.spec?.selector?.matchLabels ?? {};
  const template = d.spec?.template?.metadata?.labels ?? {};
  const keys = Object.entries(selector)
    .filter(([k, v]) => isColour(v) && template[k] === v)
    .map(([k]) => k);
  return keys.length === 1 ? keys[0] : undefined;
}

/** The active Service among an app's Services: the one annotated active, else the only one not annotated. */
export function activeServiceOf(services: readonly Service[]): Service | undefined {
  const marked = services.filter((s) => serviceRole(s) === 'active');
  if (marked.length > 0) return marked.length === 1 ? marked[0] : undefined;
  const unmarked = services.filter((s) => serviceRole(s) === undefined);
  return unmarked.length === 1 ? unmarked[0] : undefined;
}

/** activeServiceOf, and the problem when none can be chosen from several. */
function pickActive(app: string, services: readonly Service[], problems: string[]): Service | undefined {
  const marked = services.filter((s) => serviceRole(s) === 'active');
  const unmarked = services.filter((s) => serviceRole(s) === undefined);
  if (marked.length > 1)
    problems.push(`app ${app} has ${marked.length} Services annotated ${ROLE_ANNOTATION}=active (${names(marked)}); keep the annotation on one`);
  else if (marked.length === 0 && unmarked.length > 1)
    problems.push(
      `app ${app} has ${unmarked.length} Services (${names(unmarked)}) and none is annotated ${ROLE_ANNOTATION}=active; ` +
        `run 'kubectl annotate service ${unmarked[0]!.metadata.name} ${ROLE_ANNOTATION}=active'`,
    );
  return activeServiceOf(services);
}

function names(objs: readonly { metadata: { name?: string } }[]): string {
  return objs.map((o) => o.metadata.name).join(', ');
}

export function resolveApp(objs: AppObjects): AppView {
  const problems: string[] = [];
  const services = objs.services.filter((s) => !s.metadata.deletionTimestamp);
  const active = pickActive(objs.app, services, problems);
  const slotKey = slotKeyOf(objs, active);
  const previews = services.filter((s) => s !== active && serviceRole(s) === 'preview');

  const deployments: Partial<Record<Colour, Deployment>> = {};
  const duplicates: Deployment[] = [];
  for (const d of objs.deployments) {
    if (d.metadata.deletionTimestamp) continue;
    const c = colourOfDeployment(d, slotKey);
    if (!c) {
      problems.push(`Deployment ${d.metadata.name} of app ${objs.app} has no ${slotKey}=blue|green label in its pod template`);
      continue;
    }
    const seen = deployments[c];
    if (seen) {
      duplicates.push(d);
      problems.push(`app ${objs.app} has two ${c} Deployments (${seen.metadata.name}, ${d.metadata.name}); keep one per colour`);
      continue;
    }
    deployments[c] = d;
  }

  let live: Colour | undefined;
  if (active) {
    const v = active.spec?.selector?.[slotKey];
    if (isColour(v)) live = v;
    else
      problems.push(
        `Service ${active.metadata.name} selects ${v === undefined ? `no ${slotKey} label` : `${slotKey}=${v}`}; it should select ${slotKey}=blue or ${slotKey}=green`,
      );
  }
  const hpas = (objs.hpas ?? []).filter((h) => !h.metadata.deletionTimestamp);
  const view: AppView = { namespace: objs.namespace, app: objs.app, slotKey, previews, deployments, duplicates, services, hpas, problems, objects: objs };
  if (active) view.active = active;
  if (live) {
    view.live = live;
    view.idle = otherColour(live);
  }
  return view;
}

/**
 * The colours that receive traffic: what each Service that is not a preview selects
 * (both colours for a Service without the slot key). With a clean app this is just the live colour.
 */
export function servingColours(view: AppView): Set<Colour> {
  const out = new Set<Colour>();
  for (const s of view.services) {
    if (serviceRole(s) === 'preview') continue;
    const v = s.spec?.selector?.[view.slotKey];
    if (v === undefined) {
      out.add('blue');
      out.add('green');
    } else if (isColour(v)) out.add(v);
  }
  return out;
}

export function deploymentName(d: Deployment | undefined): string {
  return d?.metadata.name ?? '<none>';
}

/**
 * The app as it will be with `svc` stored (created or changed): the Service may name the slot key
 * the Deployments use, or be the app's active Service, and an app's objects come in any order.
 */
export function withService(view: AppView, svc: Service): AppView {
  const name = svc.metadata.name;
  const services = [...view.objects.services.filter((s) => s.metadata.name !== name), svc];
  return resolveApp({ ...view.objects, services });
}
