// The AdmissionReviews captured from the local kube-apiserver (test/fixtures/admission):
// each file holds the review, the kubectl command that caused it with its result, and the
// app's Deployments and Services as they were just before the command.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type AppView, appNameOf, resolveApp } from '../../../src/core/app.ts';
import type { Endpoint } from '../../../src/core/admission/decide.ts';
import type { AdmissionRequest } from '../../../src/core/admission/review.ts';
import type { Deployment, Service } from '../../../src/core/k8s-types.ts';

export const FIXTURE_DIR = path.resolve(import.meta.dirname, '../../fixtures/admission');

export interface Fixture {
  file: string;
  endpoint: Endpoint;
  scenario: string;
  description: string;
  command: string;
  kubectl: { exitCode: number; stderr: string };
  cluster: { deployments: Deployment[]; services: Service[] };
  review: { apiVersion: string; kind: string; request: AdmissionRequest };
}

export function fixtureFiles(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort();
}

/** `<scenario>.<n>.<endpoint>.json` */
export function endpointOf(file: string): Endpoint {
  const m = /^[a-z0-9-]+\.\d+\.(mutate|validate)\.json$/.exec(file);
  if (!m) throw new Error(`fixture ${file} is not named <scenario>.<n>.<mutate|validate>.json`);
  return m[1] as Endpoint;
}

export function loadFixture(file: string): Fixture {
  const raw = JSON.parse(readFileSync(path.join(FIXTURE_DIR, file), 'utf8')) as Omit<Fixture, 'file' | 'endpoint'>;
  return { ...raw, file, endpoint: endpointOf(file) };
}

/** The app a review is about: its object's (or old object's) label, or for deployments/scale the named Deployment's. */
export function appOfFixture(f: Fixture): string {
  const r = f.review.request;
  const fromObject = appNameOf(r.object as Deployment | undefined) ?? appNameOf(r.oldObject as Deployment | undefined);
  if (fromObject) return fromObject;
  const d = f.cluster.deployments.find((x) => x.metadata.name === r.name && x.metadata.namespace === r.namespace);
  const app = appNameOf(d);
  if (!app) throw new Error(`fixture ${f.file}: cannot tell its app`);
  return app;
}

/** The app's view from the captured cluster objects, grouped by the app label. */
export function viewOfFixture(f: Fixture): AppView {
  const app = appOfFixture(f);
  const ns = f.review.request.namespace ?? '';
  const mine = <T extends Deployment | Service>(objs: T[]) => objs.filter((o) => appNameOf(o) === app && o.metadata.namespace === ns);
  return resolveApp({ namespace: ns, app, deployments: mine(f.cluster.deployments), services: mine(f.cluster.services) });
}
