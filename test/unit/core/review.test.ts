import { describe, expect, it } from 'vitest';
import { type ReadResult, readAdmissionReview, reviewOut } from '../../../src/core/admission/review.ts';
import { deployment, deploymentDelete, deploymentUpdate, review, scaleUpdate, withImage, IMAGE_V2 } from './builders.ts';

const blue = deployment({ colour: 'blue' });
const good = () => structuredClone(review(deploymentUpdate(blue, withImage(blue, IMAGE_V2), { uid: 'u-1' }))) as unknown as Record<string, any>;
const withReq = (fn: (r: Record<string, any>) => void) => {
  const b = good();
  fn(b.request);
  return b;
};

describe('readAdmissionReview: refusals, each with its message', () => {
  it.each<{ name: string; body: unknown; want: ReadResult }>([
    { name: 'null', body: null, want: { ok: false, message: 'body is not a JSON object' } },
    { name: 'an array', body: [good()], want: { ok: false, message: 'body is not a JSON object' } },
    { name: 'a string', body: 'AdmissionReview', want: { ok: false, message: 'body is not a JSON object' } },
    { name: 'a number', body: 1, want: { ok: false, message: 'body is not a JSON object' } },
    { name: 'undefined', body: undefined, want: { ok: false, message: 'body is not a JSON object' } },
    {
      name: 'apiVersion v1beta1 (uid still echoed)',
      body: { ...good(), apiVersion: 'admission.k8s.io/v1beta1' },
      want: { ok: false, uid: 'u-1', message: 'apiVersion must be admission.k8s.io/v1, got "admission.k8s.io/v1beta1"' },
    },
    {
      name: 'apiVersion missing',
      body: { ...good(), apiVersion: undefined },
      want: { ok: false, uid: 'u-1', message: 'apiVersion must be admission.k8s.io/v1, got null' },
    },
    {
      name: 'apiVersion a number',
      body: { ...good(), apiVersion: 1 },
      want: { ok: false, uid: 'u-1', message: 'apiVersion must be admission.k8s.io/v1, got 1' },
    },
    {
      name: 'kind wrong',
      body: { ...good(), kind: 'AdmissionResponse' },
      want: { ok: false, uid: 'u-1', message: 'kind must be AdmissionReview, got "AdmissionResponse"' },
    },
    { name: 'no request', body: { ...good(), request: undefined }, want: { ok: false, message: 'request is missing' } },
    { name: 'request an array', body: { ...good(), request: [] }, want: { ok: false, message: 'request is missing' } },
    { name: 'no uid', body: withReq((r) => delete r.uid), want: { ok: false, message: 'request.uid is missing' } },
    { name: 'empty uid', body: withReq((r) => (r.uid = '')), want: { ok: false, message: 'request.uid is missing' } },
    { name: 'uid a number', body: withReq((r) => (r.uid = 42)), want: { ok: false, message: 'request.uid is missing' } },
    {
      name: 'operation unknown',
      body: withReq((r) => (r.operation = 'PATCH')),
      want: { ok: false, uid: 'u-1', message: 'request.operation must be CREATE, UPDATE, DELETE or CONNECT, got "PATCH"' },
    },
    {
      name: 'operation missing',
      body: withReq((r) => delete r.operation),
      want: { ok: false, uid: 'u-1', message: 'request.operation must be CREATE, UPDATE, DELETE or CONNECT, got null' },
    },
    {
      name: 'operation lower case',
      body: withReq((r) => (r.operation = 'update')),
      want: { ok: false, uid: 'u-1', message: 'request.operation must be CREATE, UPDATE, DELETE or CONNECT, got "update"' },
    },
    { name: 'kind missing', body: withReq((r) => delete r.kind), want: { ok: false, uid: 'u-1', message: 'request.kind must be {group, version, kind}' } },
    {
      name: 'kind.kind a number',
      body: withReq((r) => (r.kind.kind = 1)),
      want: { ok: false, uid: 'u-1', message: 'request.kind must be {group, version, kind}' },
    },
    {
      name: 'resource a string',
      body: withReq((r) => (r.resource = 'deployments')),
      want: { ok: false, uid: 'u-1', message: 'request.resource must be {group, version, resource}' },
    },
    {
      name: 'resource without group',
      body: withReq((r) => delete r.resource.group),
      want: { ok: false, uid: 'u-1', message: 'request.resource must be {group, version, resource}' },
    },
    {
      name: 'subResource a number',
      body: withReq((r) => (r.subResource = 1)),
      want: { ok: false, uid: 'u-1', message: 'request.subResource must be a string' },
    },
    {
      name: 'namespace an object',
      body: withReq((r) => (r.namespace = {})),
      want: { ok: false, uid: 'u-1', message: 'request.namespace must be a string' },
    },
    { name: 'name null', body: withReq((r) => (r.name = null)), want: { ok: false, uid: 'u-1', message: 'request.name must be a string' } },
    {
      name: 'userInfo a string',
      body: withReq((r) => (r.userInfo = 'alice')),
      want: { ok: false, uid: 'u-1', message: 'request.userInfo must be an object' },
    },
    {
      name: 'dryRun a string',
      body: withReq((r) => (r.dryRun = 'true')),
      want: { ok: false, uid: 'u-1', message: 'request.dryRun must be a boolean' },
    },
    {
      name: 'UPDATE without object',
      body: withReq((r) => delete r.object),
      want: { ok: false, uid: 'u-1', message: 'request.object must be a Kubernetes object with metadata for UPDATE' },
    },
    {
      name: 'UPDATE with object null',
      body: withReq((r) => (r.object = null)),
      want: { ok: false, uid: 'u-1', message: 'request.object must be a Kubernetes object with metadata for UPDATE' },
    },
    {
      name: 'UPDATE without oldObject',
      body: withReq((r) => delete r.oldObject),
      want: { ok: false, uid: 'u-1', message: 'request.oldObject must be a Kubernetes object with metadata for UPDATE' },
    },
    {
      name: 'object without metadata',
      body: withReq((r) => delete r.object.metadata),
      want: { ok: false, uid: 'u-1', message: 'request.object must be a Kubernetes object with metadata for UPDATE' },
    },
    {
      name: 'metadata an array',
      body: withReq((r) => (r.object.metadata = [])),
      want: { ok: false, uid: 'u-1', message: 'request.object must be a Kubernetes object with metadata for UPDATE' },
    },
    {
      name: 'a label value that is not a string',
      body: withReq((r) => (r.object.metadata.labels.app = 5)),
      want: { ok: false, uid: 'u-1', message: 'request.object must be a Kubernetes object with metadata for UPDATE' },
    },
    {
      name: 'labels an array',
      body: withReq((r) => (r.object.metadata.labels = ['a'])),
      want: { ok: false, uid: 'u-1', message: 'request.object must be a Kubernetes object with metadata for UPDATE' },
    },
    {
      name: 'an annotation value that is not a string',
      body: withReq((r) => (r.oldObject.metadata.annotations = { a: null })),
      want: { ok: false, uid: 'u-1', message: 'request.oldObject must be a Kubernetes object with metadata for UPDATE' },
    },
    {
      name: 'name a number',
      body: withReq((r) => (r.object.metadata.name = 5)),
      want: { ok: false, uid: 'u-1', message: 'request.object must be a Kubernetes object with metadata for UPDATE' },
    },
    {
      name: 'CREATE without object',
      body: withReq((r) => {
        r.operation = 'CREATE';
        delete r.object;
      }),
      want: { ok: false, uid: 'u-1', message: 'request.object must be a Kubernetes object with metadata for CREATE' },
    },
    {
      name: 'DELETE without oldObject',
      body: withReq((r) => {
        r.operation = 'DELETE';
        delete r.oldObject;
      }),
      want: { ok: false, uid: 'u-1', message: 'request.oldObject must be a Kubernetes object with metadata for DELETE' },
    },
  ])('$name', ({ body, want }) => {
    expect(readAdmissionReview(body)).toEqual(want);
  });
});

describe('readAdmissionReview: accepted', () => {
  it.each([
    { name: 'an UPDATE', body: good() },
    {
      name: 'a DELETE (object null, as the API server sends it)',
      body: { ...review(deploymentDelete(blue, { uid: 'u-1' })), request: { ...deploymentDelete(blue, { uid: 'u-1' }), object: null } },
    },
    { name: 'a scale UPDATE', body: review(scaleUpdate('shop-blue', 2, 3, { uid: 'u-1' })) },
    {
      name: 'a CONNECT without objects',
      body: withReq((r) => {
        r.operation = 'CONNECT';
        delete r.object;
        delete r.oldObject;
      }),
    },
    {
      name: 'null labels and annotations',
      body: withReq((r) => {
        r.object.metadata.labels = null;
        r.object.metadata.annotations = null;
      }),
    },
    {
      name: 'unknown extra fields',
      body: { ...good(), extra: 1, request: { ...good().request, requestKind: { group: 'apps', version: 'v1', kind: 'Deployment' }, options: {} } },
    },
  ])('$name', ({ body }) => {
    const r = readAdmissionReview(body);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.request.uid).toBe('u-1');
  });

  it('userInfo defaults to {}', () => {
    const r = readAdmissionReview(withReq((x) => delete x.userInfo));
    expect(r).toMatchObject({ ok: true, request: { userInfo: {} } });
  });

  it('the request is passed through as is', () => {
    const b = good();
    const r = readAdmissionReview(b);
    expect(r).toEqual({ ok: true, request: b.request });
  });
});

describe('reviewOut', () => {
  it('wraps a response in admission.k8s.io/v1', () => {
    expect(reviewOut({ uid: 'x', allowed: true })).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'x', allowed: true },
    });
  });
});
