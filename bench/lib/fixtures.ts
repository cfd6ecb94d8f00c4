// The captured AdmissionReviews (test/fixtures/admission) as request bodies,
// and the cluster objects captured with them, cloned into as many synthetic
// enrolled apps as a scale run needs.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Deployment, Service } from '../../src/core/k8s-types.ts';
import { APP_LABEL } from '../../src/core/labels.ts';
import { REPO } from './server-proc.ts';

export const FIXTURE_DIR = join(REPO, 'test/fixtures/admission');

/** a Deployment UPDATE of the live colour with --dry-run=server: the decision computes the redirect and the patch, and nothing is written. */
export const MUTATE_FIXTURE = 'set-image-live-dry-run.1.mutate.json';
/** The live Deployment UPDATE the apiserver validates after the mutate reverted its template (kubectl set image on the live colour). */
export const VALIDATE_FIXTURE = 'set-image-live.4.validate.json';

export interface CapturedFixture {
  file: string;
  command: string;
  cluster: { deployments: Deployment[]; services: Service[] };
  review: { apiVersion: string; kind: string; request: { uid: string; namespace?: string; name?: string; [k: string]: unknown } };
  /** The review as the apiserver sends it: compact JSON. */
  body: string;
}

export function loadCaptured(file: string): CapturedFixture {
  const raw = JSON.parse(readFileSync(join(FIXTURE_DIR, file), 'utf8')) as Omit<CapturedFixture, 'file' | 'body'>;
  return { ...raw, file, body: JSON.stringify(raw.review) };
}

type Obj = Deployment | Service;

function relabel(labels: Record<string, string> | undefined, from: string, to: string): Record<string, string> | undefined {
  if (!labels) return labels;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) out[k] = v === from ? to : v;
  return out;
}

/** A deep copy of one of the app's objects, renamed into another app and namespace. */
export function cloneInto<T extends Obj>(o: T, fromApp: string, app: string, namespace: string): T {
  // As the objects arrive from the API server: parsed from JSON (structuredClone would add its own native buffers to the RSS).
  const c = JSON.parse(JSON.stringify(o)) as T;
  const m = c.metadata;
  m.name = (m.name ?? '').replace(fromApp, app);
  m.namespace = namespace;
  m.uid = randomUUID();
  m.labels = relabel(m.labels, fromApp, app);
  const spec = (c as { spec?: any }).spec;
  if (spec?.selector?.matchLabels) spec.selector.matchLabels = relabel(spec.selector.matchLabels, fromApp, app);
  else if (spec?.selector) spec.selector = relabel(spec.selector, fromApp, app);
  if (spec?.template?.metadata?.labels) spec.template.metadata.labels = relabel(spec.template.metadata.labels, fromApp, app);
  return c;
}

export interface FilledApp {
  kind: 'deployment' | 'service';
  obj: Obj;
}

/**
 * The fixture's own app plus apps-1 clones (10 apps per namespace), as the
 * objects a store is filled with. Each clone is a separate deep copy.
 */
export function* enrolledObjects(f: CapturedFixture, apps: number): Generator<FilledApp> {
  const ns = f.review.request.namespace ?? 'default';
  const own = (o: Obj) => o.metadata.namespace === ns && o.metadata.labels?.[APP_LABEL] !== undefined;
  const deps = f.cluster.deployments.filter(own);
  const svcs = f.cluster.services.filter(own);
  const app = deps[0]?.metadata.labels?.[APP_LABEL];
  if (!app) throw new Error(`${f.file}: no enrolled Deployment in the captured cluster`);
  for (const d of deps) yield { kind: 'deployment', obj: structuredClone(d) };
  for (const s of svcs) yield { kind: 'service', obj: structuredClone(s) };
  for (let i = 1; i < apps; i++) {
    const name = `app${i}`;
    const namespace = `bench-${Math.floor(i / 10)}`;
    for (const d of deps) yield { kind: 'deployment', obj: cloneInto(d, app, name, namespace) };
    for (const s of svcs) yield { kind: 'service', obj: cloneInto(s, app, name, namespace) };
  }
}
