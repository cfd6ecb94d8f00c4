// AdmissionReview (admission.k8s.io/v1) in and out: a strict reader that says
// exactly what is wrong with a body, and the response builders.
import { isRecord, type UserInfo } from '../k8s-types.ts';

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}
export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: Operation;
  userInfo: UserInfo;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
  options?: unknown;
}

export interface Status {
  code: number;
  reason?: string;
  message: string;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: Status;
  patch?: string;
  patchType?: 'JSONPatch';
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
}

export interface AdmissionReviewOut {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export type ReadResult = { ok: true; request: AdmissionRequest } | { ok: false; uid?: string; message: string };

const OPERATIONS = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

function isGvk(v: unknown): v is GroupVersionKind {
  return isRecord(v) && typeof v.group === 'string' && typeof v.version === 'string' && typeof v.kind === 'string';
}
function isGvr(v: unknown): v is GroupVersionResource {
  return isRecord(v) && typeof v.group === 'string' && typeof v.version === 'string' && typeof v.resource === 'string';
}
function isMeta(v: unknown): boolean {
  if (!isRecord(v) || !isRecord(v.metadata)) return false;
  const m = v.metadata;
  for (const k of ['labels', 'annotations'] as const) {
    if (m[k] === undefined || m[k] === null) continue;
    const map = m[k];
    if (!isRecord(map)) return false;
    for (const key in map) if (typeof map[key] !== 'string') return false;
  }
  return m.name === undefined || typeof m.name === 'string';
}

/** Reads an AdmissionReview body (already JSON-parsed). Never throws. */
export function readAdmissionReview(body: unknown): ReadResult {
  if (!isRecord(body)) return { ok: false, message: 'body is not a JSON object' };
  const req = body.request;
  const uid = isRecord(req) && typeof req.uid === 'string' && req.uid !== '' ? req.uid : undefined;
  const fail = (message: string): ReadResult => (uid ? { ok: false, uid, message } : { ok: false, message });
  if (body.apiVersion !== 'admission.k8s.io/v1') return fail(`apiVersion must be admission.k8s.io/v1, got ${JSON.stringify(body.apiVersion ?? null)}`);
  if (body.kind !== 'AdmissionReview') return fail(`kind must be AdmissionReview, got ${JSON.stringify(body.kind ?? null)}`);
  if (!isRecord(req)) return fail('request is missing');
  if (!uid) return fail('request.uid is missing');
  if (typeof req.operation !== 'string' || !OPERATIONS.has(req.operation))
    return fail(`request.operation must be CREATE, UPDATE, DELETE or CONNECT, got ${JSON.stringify(req.operation ?? null)}`);
  if (!isGvk(req.kind)) return fail('request.kind must be {group, version, kind}');
  if (!isGvr(req.resource)) return fail('request.resource must be {group, version, resource}');
  if (req.subResource !== undefined && typeof req.subResource !== 'string') return fail('request.subResource must be a string');
  if (req.namespace !== undefined && typeof req.namespace !== 'string') return fail('request.namespace must be a string');
  if (req.name !== undefined && typeof req.name !== 'string') return fail('request.name must be a string');
  if (req.userInfo !== undefined && !isRecord(req.userInfo)) return fail('request.userInfo must be an object');
  if (req.dryRun !== undefined && typeof req.dryRun !== 'boolean') return fail('request.dryRun must be a boolean');
  const op = req.operation as Operation;
  const needObject = op === 'CREATE' || op === 'UPDATE';
  const needOld = op === 'UPDATE' || op === 'DELETE';
  if (needObject && !isMeta(req.object)) return fail(`request.object must be a Kubernetes object with metadata for ${op}`);
  if (needOld && !isMeta(req.oldObject)) return fail(`request.oldObject must be a Kubernetes object with metadata for ${op}`);
  const request = { ...req, userInfo: (req.userInfo ?? {}) as UserInfo } as unknown as AdmissionRequest;
  return { ok: true, request };
}

const REASONS: Record<number, string> = { 400: 'BadRequest', 403: 'Forbidden', 409: 'Conflict', 413: 'RequestEntityTooLarge', 503: 'ServiceUnavailable' };

/** A refusal: allowed false, with the status the API server shows (reason from the code when not given). */
export function refusal(uid: string | undefined, code: number, message: string, reason?: string): AdmissionResponse {
  return { uid: uid ?? '', allowed: false, status: { code, reason: reason ?? REASONS[code] ?? 'InternalError', message } };
}

/** The AdmissionReview envelope of every answer, a decision's or an error's. */
export function reviewOut(response: AdmissionResponse): AdmissionReviewOut {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}
