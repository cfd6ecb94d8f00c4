// The narrow view of the Kubernetes API that the commands need. KubeCluster
// implements it over src/kube/client.ts; unit tests implement it in memory.
// Errors are ApiError (src/kube/errors.ts) with the HTTP status, from both.
import type { Deployment, HorizontalPodAutoscaler, ObjectMeta, Service } from '../../src/core/k8s-types.ts';
import { ApiError, isStatus } from '../../src/kube/errors.ts';
import type { PatchType } from '../../src/kube/client.ts';

export type { ApiError, PatchType };

export interface WriteOptions {
  /** Server-side dry run (dryRun=All): admission runs, nothing is stored. */
  dryRun?: boolean;
}

export interface Pod {
  metadata: ObjectMeta;
  status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
  [k: string]: unknown;
}

export interface Endpoint {
  addresses: string[];
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  targetRef?: { kind?: string; name?: string; namespace?: string; uid?: string };
}

export interface EndpointSlice {
  metadata: ObjectMeta;
  endpoints?: Endpoint[] | null;
  [k: string]: unknown;
}

export interface Cluster {
  /** The namespace of the kubeconfig's current context ("default" when it names none). */
  readonly defaultNamespace: string;
  /** ns undefined: every namespace. */
  listDeployments(ns: string | undefined, labelSelector?: string): Promise<Deployment[]>;
  listServices(ns: string | undefined, labelSelector?: string): Promise<Service[]>;
  /** The apps' HorizontalPodAutoscalers, for status. Optional: without it, status shows none. */
  listHpas?(ns: string | undefined, labelSelector: string): Promise<HorizontalPodAutoscaler[]>;
  /** undefined when it does not exist. */
  getDeployment(ns: string, name: string): Promise<Deployment | undefined>;
  getService(ns: string, name: string): Promise<Service | undefined>;
  createDeployment(ns: string, body: Deployment, opts?: WriteOptions): Promise<Deployment>;
  patchDeployment(ns: string, name: string, patch: unknown, type: PatchType, opts?: WriteOptions): Promise<Deployment>;
  patchService(ns: string, name: string, patch: unknown, type: PatchType, opts?: WriteOptions): Promise<Service>;
  deleteDeployment(ns: string, name: string, opts?: WriteOptions): Promise<void>;
  listPods(ns: string, labelSelector: string): Promise<Pod[]>;
  listEndpointSlices(ns: string, labelSelector: string): Promise<EndpointSlice[]>;
  listNamespaces(): Promise<string[]>;
  /**
   * One app's Deployments and Services, quickly and fresh: which objects carry the app's label from
   * the API server's watch cache (a LIST with resourceVersion=0, which does not wait), then a GET of
   * each (a quorum read from etcd, as fresh as a LIST without a resourceVersion, which after any write
   * elsewhere in the cluster waits for the watch cache to catch up: up to 100 ms). Those gone or no
   * longer labelled for the app are left out. Optional: without it, LISTs by label.
   */
  readAppByName?(ns: string, app: string): Promise<{ deployments: Deployment[]; services: Service[] }>;
  /** The user the credentials authenticate as (a SelfSubjectReview), when the server says. */
  whoAmI(): Promise<string | undefined>;
  close(): void;
}

export { isStatus };

/** An error from the API (src/kube/errors.ts: importing it does not load the client). */
export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}
export function isNotFound(e: unknown): boolean {
  return isStatus(e, 404);
}
export function isConflict(e: unknown): boolean {
  return isStatus(e, 409);
}
export function isAlreadyExists(e: unknown): boolean {
  return isApiError(e) && e.status === 409 && e.reason === 'AlreadyExists';
}
/** A refusal by an admission webhook or a ValidatingAdmissionPolicy (as opposed to RBAC or a malformed request). */
export function isAdmissionDenial(e: unknown): e is ApiError {
  return isApiError(e) && /denied the request|ValidatingAdmissionPolicy/.test(e.message);
}
