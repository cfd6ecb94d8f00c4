// Reading apps from the cluster: the Deployments and Services labelled
// bluegreen.io/app=APP (one app), or every object carrying the label (all apps
// of a namespace, or of the cluster with -A).
import type { AppObjects } from '../../src/core/app.ts';
import type { Deployment, Service } from '../../src/core/k8s-types.ts';
import { APP_LABEL } from '../../src/core/labels.ts';
import { isStatus } from '../../src/kube/errors.ts';
import type { Cluster } from './cluster.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { nsFlag } from './context.ts';

export interface FetchOptions {
  /**
   * Find the objects in the API server's watch cache and GET each (Cluster.readAppByName): fresh
   * objects without a LIST's wait. Nothing found is asked again with LISTs, so that "not enrolled"
   * is never said from a cache that is behind.
   */
  byName?: boolean;
}

/** The app's objects, or undefined when nothing in the namespace carries its label. */
export async function fetchApp(cluster: Cluster, namespace: string, app: string, o: FetchOptions = {}): Promise<AppObjects | undefined> {
  if (o.byName && cluster.readAppByName) {
    const { deployments, services } = await cluster.readAppByName(namespace, app);
    if (deployments.length || services.length) return { namespace, app, deployments, services };
  }
  const selector = `${APP_LABEL}=${app}`;
  const [deployments, services] = await Promise.all([cluster.listDeployments(namespace, selector), cluster.listServices(namespace, selector)]);
  if (deployments.length === 0 && services.length === 0) return undefined;
  return { namespace, app, deployments, services };
}

/**
 * The apps with their HorizontalPodAutoscalers (labelled for the app), for status. One LIST by label;
 * where the user may not list HPAs (or the cluster serves no autoscaling/v2), the apps as they were.
 */
export async function withHpas(cluster: Cluster, namespace: string | undefined, apps: AppObjects[]): Promise<AppObjects[]> {
  if (!cluster.listHpas || apps.length === 0) return apps;
  const selector = apps.length === 1 ? `${APP_LABEL}=${apps[0]!.app}` : APP_LABEL;
  let hpas;
  try {
    hpas = await cluster.listHpas(namespace, selector);
  } catch (e) {
    if (isStatus(e, 403, 404)) return apps;
    throw e;
  }
  return apps.map((a) => {
    const mine = hpas.filter((h) => (h.metadata.namespace ?? namespace) === a.namespace && h.metadata.labels?.[APP_LABEL] === a.app);
    return mine.length ? { ...a, hpas: mine } : a;
  });
}

export function notEnrolled(namespace: string, app: string): CliError {
  return new CliError(
    `app ${app} is not enrolled in namespace ${namespace}: no Deployment or Service there is labelled ${APP_LABEL}=${app}`,
    EXIT.ERROR,
    `enrol it with 'kubectl bg init ${app}${nsFlag(namespace)} --from deployment/<name>'`,
  );
}

/** Like fetchApp, but a missing app is an error (exit 1). */
export async function requireApp(cluster: Cluster, namespace: string, app: string, o: FetchOptions = {}): Promise<AppObjects> {
  const objs = await fetchApp(cluster, namespace, app, o);
  if (!objs) throw notEnrolled(namespace, app);
  return objs;
}

/** Every app in a namespace (or in all namespaces when namespace is undefined), sorted by namespace then name. */
export async function listApps(cluster: Cluster, namespace: string | undefined): Promise<AppObjects[]> {
  const [deployments, services] = await Promise.all([cluster.listDeployments(namespace, APP_LABEL), cluster.listServices(namespace, APP_LABEL)]);
  const apps = new Map<string, { namespace: string; app: string; deployments: Deployment[]; services: Service[] }>();
  const entry = (o: Deployment | Service) => {
    const ns = o.metadata.namespace ?? namespace ?? '';
    const app = o.metadata.labels?.[APP_LABEL] ?? '';
    const key = `${ns}\u0000${app}`;
    let e = apps.get(key);
    if (!e) apps.set(key, (e = { namespace: ns, app, deployments: [], services: [] }));
    return e;
  };
  for (const d of deployments) entry(d).deployments.push(d);
  for (const s of services) entry(s).services.push(s);
  return [...apps.values()].filter((a) => a.app !== '').sort((a, b) => (a.namespace === b.namespace ? cmp(a.app, b.app) : cmp(a.namespace, b.namespace)));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
