// The plan of `kubectl bg init`: how an existing Deployment and its Service become a blue-green
// app, decided from the namespace's objects alone (plugin/src/commands/init.ts reads them, runs
// the steps and says what it did). Two starting points:
// - copy: one ordinary Deployment (no slot label) and its Service. APP-blue is created as a copy
//   of it (slot=blue, same replicas, live) and APP-green too (slot=green, 0 replicas: idle and
//   scaled down until a change is redirected to it). Once blue is available the Service selects
//   slot=blue, then the source is deleted (unless keepSource).
// - adopt: the source already carries KEY=blue|green (the seeds' setup, e.g. `environment`): the
//   colours exist; only the missing labels and annotations are added (and a missing second colour
//   created, scaled down).
// A step already done is not planned again, so a second run finishes the job or plans nothing.
import { activeServiceOf, annotatedSlotKey, colourKeyOf } from './app.ts';
import { nsFlag } from './commands.ts';
import type { Deployment, Service } from './k8s-types.ts';
import { annotationsOf, labelsOf } from './k8s-types.ts';
import {
  APP_LABEL,
  type Colour,
  COLOURS,
  DEFAULT_SLOT_LABEL,
  isColour,
  LAST_CHANGE_ANNOTATION,
  LIVE_LABEL,
  otherColour,
  PENDING_CHANGE_ANNOTATION,
  ROLE_ANNOTATION,
  SLOT_LABEL_ANNOTATION,
} from './labels.ts';
import { withSlotLabel } from './template.ts';

export type InitStep =
  | { kind: 'create'; colour: Colour; name: string; body: Deployment; detail: string }
  | { kind: 'label'; colour: Colour; name: string; patch: Record<string, unknown>; detail: string }
  | { kind: 'wait'; name: string; replicas: number }
  | { kind: 'service'; name: string; patch: Record<string, unknown>; detail: string }
  | { kind: 'delete'; name: string; detail: string };

export interface InitInput {
  app: string;
  namespace: string;
  /** The --from Deployment, when given and found. */
  source?: Deployment;
  /** Every Deployment and Service of the namespace. */
  deployments: readonly Deployment[];
  services: readonly Service[];
  service?: string;
  slotLabel?: string;
  keepSource: boolean;
}

export type InitPlan =
  | {
      ok: true;
      mode: 'copy' | 'adopt';
      slotKey: string;
      live: Colour;
      service: string;
      names: Record<Colour, string>;
      replicas: Record<Colour, number>;
      /** The first container's name, for the example in the closing message. */
      container: string;
      steps: InitStep[];
    }
  /** usage: the command must name something (exit 64); state: the app's objects do not allow it (exit 1). */
  | { ok: false; problem: 'usage' | 'state'; reason: string; hint?: string };

const STRIP_ANNOTATIONS = [
  'deployment.kubernetes.io/revision',
  'kubectl.kubernetes.io/last-applied-configuration',
  LAST_CHANGE_ANNOTATION,
  PENDING_CHANGE_ANNOTATION,
];

function matchLabels(d: Deployment): Record<string, string> {
  return d.spec?.selector?.matchLabels ?? {};
}
function templateLabels(d: Deployment): Record<string, string> {
  return d.spec?.template?.metadata?.labels ?? {};
}
function subset(a: Record<string, string>, b: Record<string, string>): boolean {
  return Object.entries(a).every(([k, v]) => b[k] === v);
}
function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  return subset(a, b) && subset(b, a);
}
function fmtLabels(l: Record<string, string>): string {
  return Object.entries(l)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** The source as the Deployment of `colour`: same spec, the slot label set, server-set fields dropped. */
export function copyDeployment(
  src: Deployment,
  o: { name: string; app: string; slotKey: string; colour: Colour; live: boolean; replicas: number },
): Deployment {
  const annotations: Record<string, string> = { ...annotationsOf(src) };
  for (const k of STRIP_ANNOTATIONS) delete annotations[k];
  if (o.slotKey !== DEFAULT_SLOT_LABEL) annotations[SLOT_LABEL_ANNOTATION] = o.slotKey;
  else delete annotations[SLOT_LABEL_ANNOTATION];
  const spec = structuredClone(src.spec ?? {});
  spec.replicas = o.replicas;
  spec.selector = { ...spec.selector, matchLabels: { ...spec.selector?.matchLabels, [o.slotKey]: o.colour } };
  const template = withSlotLabel(spec.template ?? {}, o.slotKey, o.colour);
  delete template.metadata!.creationTimestamp;
  spec.template = template;
  const metadata: Deployment['metadata'] = {
    name: o.name,
    labels: { ...labelsOf(src), [APP_LABEL]: o.app, [LIVE_LABEL]: o.live ? 'true' : 'false' },
  };
  if (src.metadata.namespace) metadata.namespace = src.metadata.namespace;
  if (Object.keys(annotations).length) metadata.annotations = annotations;
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata, spec };
}

/** --slot-label, else the key the app's objects name, else the source's colour label, else the default. */
function detectSlotKey(i: InitInput, appDeps: readonly Deployment[], appSvcs: readonly Service[]): string {
  if (i.slotLabel) return i.slotLabel;
  return annotatedSlotKey({ deployments: appDeps, services: appSvcs }) ?? (i.source && colourKeyOf(i.source)) ?? DEFAULT_SLOT_LABEL;
}

export function planInit(i: InitInput): InitPlan {
  const { app } = i;
  const ns = nsFlag(i.namespace);
  const appDeps = i.deployments.filter((d) => labelsOf(d)[APP_LABEL] === app && !d.metadata.deletionTimestamp);
  const appSvcs = i.services.filter((s) => labelsOf(s)[APP_LABEL] === app);
  const key = detectSlotKey(i, appDeps, appSvcs);
  const src = i.source;
  const srcColour = src ? templateLabels(src)[key] : undefined;
  if (src && srcColour !== undefined && !isColour(srcColour))
    return { ok: false, problem: 'state', reason: `deployment/${src.metadata.name} has ${key}=${srcColour} in its pod template; a colour is blue or green` };
  const mode: 'copy' | 'adopt' = src && !isColour(srcColour) ? 'copy' : 'adopt';

  // The Deployment of each colour, where there is one.
  const found: Partial<Record<Colour, Deployment>> = {};
  for (const c of COLOURS) {
    const mine = appDeps.filter((d) => templateLabels(d)[key] === c);
    if (mine.length > 1)
      return {
        ok: false,
        problem: 'state',
        reason: `app ${app} has ${mine.length} ${c} Deployments (${mine.map((d) => d.metadata.name).join(', ')}); keep one`,
      };
    let d = mine[0];
    if (!d && src && srcColour === c) d = src;
    if (!d && src && isColour(srcColour)) {
      const want = { ...matchLabels(src), [key]: c };
      d = i.deployments.find((x) => x !== src && sameLabels(matchLabels(x), want) && templateLabels(x)[key] === c);
    }
    if (d) found[c] = d;
  }

  // The Service.
  let svc: Service | undefined;
  if (i.service) {
    svc = i.services.find((s) => s.metadata.name === i.service);
    if (!svc) return { ok: false, problem: 'state', reason: `service/${i.service} not found in namespace ${i.namespace}` };
  } else {
    svc = activeServiceOf(appSvcs) ?? i.services.find((s) => s.metadata.name === app);
    const pods = src ?? found.blue ?? found.green;
    if (!svc && pods) {
      const podLabels = templateLabels(pods);
      const selecting = i.services.filter((s) => {
        const sel = { ...s.spec?.selector };
        if (mode === 'adopt') delete sel[key];
        return Object.keys(sel).length > 0 && subset(sel, podLabels);
      });
      if (selecting.length > 1)
        return {
          ok: false,
          problem: 'usage',
          reason: `${selecting.length} Services select the pods of deployment/${pods.metadata.name} (${selecting.map((s) => s.metadata.name).join(', ')})`,
          hint: `name the one carrying the traffic: 'kubectl bg init ${app}${ns} --from deployment/${pods.metadata.name} --service NAME'`,
        };
      svc = selecting[0];
    }
    if (!svc)
      return {
        ok: false,
        problem: 'state',
        reason: `no Service of app ${app} found in namespace ${i.namespace}: none is named ${app} or selects the pods of ${pods ? `deployment/${pods.metadata.name}` : 'the app'}`,
        hint: `create one, or name it with 'kubectl bg init ${app}${ns} --from deployment/NAME --service NAME'`,
      };
  }
  const svcName = svc.metadata.name ?? '';
  const selected = svc.spec?.selector?.[key];
  if (selected !== undefined && !isColour(selected))
    return { ok: false, problem: 'state', reason: `Service ${svcName} selects ${key}=${selected}; a colour is blue or green` };

  const live: Colour = isColour(selected) ? selected : isColour(srcColour) ? srcColour : found.blue || !found.green ? 'blue' : 'green';
  const idle = otherColour(live);
  const base = found[live] ?? found[idle] ?? src;
  if (!base)
    return {
      ok: false,
      problem: 'usage',
      reason: `app ${app} is not enrolled and no Deployment to start from was given`,
      hint: `kubectl bg init ${app}${ns} --from deployment/NAME`,
    };

  const steps: InitStep[] = [];
  const names = {} as Record<Colour, string>;
  const replicas = {} as Record<Colour, number>;
  for (const c of [live, idle]) {
    const d = found[c];
    const isLive = c === live;
    if (d) {
      names[c] = d.metadata.name ?? '';
      replicas[c] = d.spec?.replicas ?? 1;
      const labels: Record<string, string> = {};
      const annotations: Record<string, string> = {};
      if (labelsOf(d)[APP_LABEL] !== app) labels[APP_LABEL] = app;
      if (labelsOf(d)[LIVE_LABEL] !== String(isLive)) labels[LIVE_LABEL] = String(isLive);
      if (key !== DEFAULT_SLOT_LABEL && annotationsOf(d)[SLOT_LABEL_ANNOTATION] !== key) annotations[SLOT_LABEL_ANNOTATION] = key;
      if (Object.keys(labels).length || Object.keys(annotations).length) {
        const metadata: Record<string, unknown> = {};
        if (Object.keys(labels).length) metadata.labels = labels;
        if (Object.keys(annotations).length) metadata.annotations = annotations;
        steps.push({
          kind: 'label',
          colour: c,
          name: names[c],
          patch: { metadata },
          detail: `${c}, ${isLive ? 'live' : 'idle'}: ${fmtLabels({ ...labels, ...annotations })}`,
        });
      }
      continue;
    }
    const from = src ?? base;
    let name = `${app}-${c}`;
    const fromName = from.metadata.name ?? '';
    if (isColour(srcColour) && fromName.endsWith(`-${srcColour}`)) name = `${fromName.slice(0, -srcColour.length)}${c}`;
    const clash = i.deployments.find((x) => x.metadata.name === name);
    if (clash)
      return {
        ok: false,
        problem: 'state',
        reason: `cannot create the ${c} Deployment ${name}: a Deployment of that name exists and is not the ${c} colour of app ${app} (no ${key}=${c} in its pod template)`,
        hint: `rename or delete deployment/${name}, or enrol it with the label ${key}=${c}`,
      };
    const n = isLive ? Math.max(from.spec?.replicas ?? 1, 1) : 0;
    names[c] = name;
    replicas[c] = n;
    steps.push({
      kind: 'create',
      colour: c,
      name,
      body: copyDeployment(from, { name, app, slotKey: key, colour: c, live: isLive, replicas: n }),
      detail: isLive
        ? `copy of ${fromName}, ${key}=${c}, ${n} replicas, live`
        : `copy of ${fromName}, ${key}=${c}, 0 replicas: idle, scaled down until a change is redirected to it`,
    });
  }

  // The Service: enrolled, selecting the live colour.
  const labels: Record<string, string> = {};
  const annotations: Record<string, string> = {};
  if (labelsOf(svc)[APP_LABEL] !== app) labels[APP_LABEL] = app;
  if (annotationsOf(svc)[ROLE_ANNOTATION] !== 'active') annotations[ROLE_ANNOTATION] = 'active';
  if (key !== DEFAULT_SLOT_LABEL && annotationsOf(svc)[SLOT_LABEL_ANNOTATION] !== key) annotations[SLOT_LABEL_ANNOTATION] = key;
  const finalSelector = { ...svc.spec?.selector, [key]: live };
  const livePodLabels = found[live] ? templateLabels(found[live]!) : { ...templateLabels(src ?? base), [key]: live };
  if (!subset(finalSelector, livePodLabels))
    return {
      ok: false,
      problem: 'state',
      reason: `Service ${svcName} would select ${fmtLabels(finalSelector)}, which the pods of ${names[live]} do not all carry (they have ${fmtLabels(livePodLabels)})`,
      hint: `name the right Service with --service, or fix its selector`,
    };
  const enrolling = Object.keys(labels).length > 0 || Object.keys(annotations).length > 0 || selected !== live;
  if (enrolling) {
    if (selected !== live || labels[APP_LABEL]) steps.push({ kind: 'wait', name: names[live], replicas: replicas[live] });
    const metadata: Record<string, unknown> = { resourceVersion: svc.metadata.resourceVersion };
    if (Object.keys(labels).length) metadata.labels = labels;
    if (Object.keys(annotations).length) metadata.annotations = annotations;
    const patch: Record<string, unknown> = { metadata };
    if (selected !== live) patch.spec = { selector: { [key]: live } };
    const what = [
      ...Object.entries(labels).map(([k, v]) => `label ${k}=${v}`),
      ...Object.entries(annotations).map(([k, v]) => `annotation ${k}=${v}`),
      ...(selected !== live ? [`selector += ${key}=${live}`] : []),
    ];
    steps.push({ kind: 'service', name: svcName, patch, detail: what.join(', ') });
  }

  if (src && mode === 'copy' && !i.keepSource && src.metadata.name !== names.blue && src.metadata.name !== names.green)
    steps.push({ kind: 'delete', name: src.metadata.name ?? '', detail: `replaced by ${names[live]}; keep it with --keep-source` });

  const container = (found[live] ?? src ?? base).spec?.template?.spec?.containers?.[0]?.name ?? 'CONTAINER';
  return { ok: true, mode, slotKey: key, live, service: svcName, names, replicas, container, steps };
}
