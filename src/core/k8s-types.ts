// The few fields of Kubernetes objects the core reads, as they arrive in JSON
// (AdmissionReview bodies and API responses alike). Everything else is kept
// untouched under index signatures.

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string | null;
  deletionTimestamp?: string;
  [k: string]: unknown;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

export interface Container {
  name: string;
  image?: string;
  [k: string]: unknown;
}

export interface PodTemplateSpec {
  metadata?: ObjectMeta;
  spec?: { containers?: Container[]; initContainers?: Container[]; [k: string]: unknown };
}

export interface DeploymentCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface Deployment {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: {
    replicas?: number;
    selector?: LabelSelector;
    template?: PodTemplateSpec;
    paused?: boolean;
    [k: string]: unknown;
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    unavailableReplicas?: number;
    conditions?: DeploymentCondition[];
    [k: string]: unknown;
  };
}

export interface Service {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: { selector?: Record<string, string>; [k: string]: unknown };
  status?: unknown;
}

/** autoscaling/v2 HorizontalPodAutoscaler: the fields kube-bluegreen reads (which Deployment it scales, its bounds, what it runs). */
export interface HorizontalPodAutoscaler {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: {
    scaleTargetRef?: { apiVersion?: string; kind?: string; name?: string };
    minReplicas?: number;
    maxReplicas?: number;
    [k: string]: unknown;
  };
  status?: { currentReplicas?: number; desiredReplicas?: number; [k: string]: unknown };
}

/** autoscaling/v1 Scale, the object of the deployments/scale subresource. */
export interface Scale {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: { replicas?: number };
  status?: { replicas?: number; selector?: string };
}

export interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export function labelsOf(o: { metadata?: ObjectMeta } | undefined): Record<string, string> {
  return o?.metadata?.labels ?? {};
}

/** A JSON object (not null, not an array). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function annotationsOf(o: { metadata?: ObjectMeta } | undefined): Record<string, string> {
  return o?.metadata?.annotations ?? {};
}
