// The real express app over real HTTPS, in process: malformed and unexpected
// requests by name, a seeded fuzz run, TLS versions, health, metrics, graceful
// close and certificate swaps.
import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnrolledObjectStore } from '../../../src/webhook/cache.ts';
import { createLogger } from '../../../src/webhook/logger.ts';
import { createMetrics, type Metrics } from '../../../src/webhook/metrics.ts';
import { admissionEndpoint, BODY_LIMIT_BYTES, createWebhookApp, listenHttps, type RunningServer } from '../../../src/webhook/server.ts';
import { type CertPair, generateSelfSigned } from '../../../src/webhook/tls.ts';
import { CTX, NOW } from '../core/builders.ts';
import { FakeCluster } from './fake-cluster.ts';
import { fixtureFiles, loadFixture } from '../core/fixture-loader.ts';

// ---- a server under test --------------------------------------------------

interface Harness {
  running: RunningServer;
  metrics: Metrics;
  store: EnrolledObjectStore;
  state: { shuttingDown: boolean };
  /** The redirects' checks seen (SubjectAccessReviews for the idle colour). */
  redirects: string[];
  /** When set, a redirect's checks wait for it. */
  gate?: Promise<void>;
  onRedirect?: () => void;
}

const setImage = loadFixture('set-image-live.1.mutate.json');
const webSetImage = loadFixture('env-key-set-image-live.1.mutate.json');

function filledStore(): EnrolledObjectStore {
  const store = new EnrolledObjectStore();
  for (const f of [setImage, webSetImage]) {
    for (const d of f.cluster.deployments) store.upsert('deployment', d);
    for (const s of f.cluster.services) store.upsert('service', s);
  }
  store.synced = true;
  return store;
}

async function startServer(pair: CertPair): Promise<Harness> {
  const store = filledStore();
  const metrics = createMetrics();
  const state = { shuttingDown: false };
  const h = { store, metrics, state, redirects: [] } as unknown as Harness;
  const cluster = new FakeCluster();
  for (const f of [setImage, webSetImage]) for (const d of f.cluster.deployments) cluster.put('deployment', d);
  const sar = cluster.mayPatchDeployment.bind(cluster);
  cluster.mayPatchDeployment = async (u, ns, name, o) => {
    h.redirects.push(name);
    h.onRedirect?.();
    if (h.gate) await h.gate;
    return sar(u, ns, name, o);
  };
  const app = createWebhookApp({
    cache: store,
    log: createLogger('silent'),
    metrics,
    now: () => NOW,
    admission: CTX,
    cluster,
    ready: () => store.synced && !state.shuttingDown,
    shuttingDown: () => state.shuttingDown,
  });
  h.running = await listenHttps(app, pair, '127.0.0.1', 0);
  return h;
}

// ---- a small HTTPS client -------------------------------------------------

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
}

function send(
  h: Harness,
  ca: string,
  o: { method?: string; path: string; body?: string | Buffer; headers?: Record<string, string>; agent?: https.Agent | false },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = o.body === undefined ? undefined : Buffer.isBuffer(o.body) ? o.body : Buffer.from(o.body);
    const req = https.request(
      {
        host: '127.0.0.1',
        port: h.running.port,
        method: o.method ?? 'POST',
        path: o.path,
        ca,
        agent: o.agent ?? false,
        // A header given as '' is left out.
        headers: Object.fromEntries(
          Object.entries({
            'content-type': 'application/json',
            ...(body ? { 'content-length': String(body.length) } : {}),
            ...o.headers,
          }).filter(([, v]) => v !== ''),
        ),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

// ---- shared server --------------------------------------------------------

let pair: CertPair;
let pair2: CertPair;
let h: Harness;

beforeAll(async () => {
  [pair, pair2] = await Promise.all([
    generateSelfSigned({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }),
    generateSelfSigned({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }),
  ]);
  h = await startServer(pair);
}, 60_000);

afterAll(async () => {
  await h?.running.close(1000);
});

const post = (path: string, body: string | Buffer, headers: Record<string, string> = {}) => send(h, pair.ca, { path, body, headers });

// ---- bodies ---------------------------------------------------------------

const UID = setImage.review.request.uid;
const base = () => structuredClone(setImage.review) as unknown as Record<string, any>;
const body = (fn: (b: Record<string, any>) => void = () => {}) => {
  const b = base();
  fn(b);
  return JSON.stringify(b);
};
const deep = (levels: number, leaf = '1') => '{"a":'.repeat(levels) + leaf + '}'.repeat(levels);
const deepInside = (fn: (b: Record<string, any>) => void, levels: number) => body(fn).replace('"__DEEP__"', deep(levels));

interface Case {
  name: string;
  method?: string;
  path?: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  status: number;
  /** A fragment of the message (JSON status message or error text). */
  message: string | RegExp;
  /** The uid the AdmissionReview response must echo. */
  uid?: string;
}

const CASES: Case[] = [
  { name: 'bad JSON', body: '{"apiVersion": admission}', status: 400, message: 'malformed AdmissionReview: body is not valid JSON', uid: '' },
  { name: 'truncated JSON', body: body().slice(0, 2000), status: 400, message: 'malformed AdmissionReview: body is not valid JSON', uid: '' },
  { name: 'empty body', body: '', status: 400, message: 'malformed AdmissionReview: ', uid: '' },
  { name: 'no body at all', status: 400, message: 'malformed AdmissionReview: ', uid: '' },
  { name: 'JSON array', body: `[${body()}]`, status: 400, message: 'malformed AdmissionReview: body is not a JSON object', uid: '' },
  { name: 'JSON string', body: '"AdmissionReview"', status: 400, message: 'malformed AdmissionReview: ', uid: '' },
  { name: 'JSON number', body: '42', status: 400, message: 'malformed AdmissionReview: ', uid: '' },
  { name: 'JSON null', body: 'null', status: 400, message: 'malformed AdmissionReview: ', uid: '' },
  { name: 'JSON true', body: 'true', status: 400, message: 'malformed AdmissionReview: ', uid: '' },
  {
    name: 'wrong apiVersion',
    body: body((b) => (b.apiVersion = 'v1')),
    status: 400,
    message: 'malformed AdmissionReview: apiVersion must be admission.k8s.io/v1, got "v1"',
    uid: UID,
  },
  {
    name: 'apiVersion v1beta1',
    body: body((b) => (b.apiVersion = 'admission.k8s.io/v1beta1')),
    status: 400,
    message: 'apiVersion must be admission.k8s.io/v1, got "admission.k8s.io/v1beta1"',
    uid: UID,
  },
  { name: 'wrong kind', body: body((b) => (b.kind = 'Pod')), status: 400, message: 'kind must be AdmissionReview, got "Pod"', uid: UID },
  { name: 'no request', body: body((b) => delete b.request), status: 400, message: 'request is missing', uid: '' },
  { name: 'no uid', body: body((b) => delete b.request.uid), status: 400, message: 'request.uid is missing', uid: '' },
  { name: 'empty uid', body: body((b) => (b.request.uid = '')), status: 400, message: 'request.uid is missing', uid: '' },
  { name: 'uid not a string', body: body((b) => (b.request.uid = { id: 1 })), status: 400, message: 'request.uid is missing', uid: '' },
  {
    name: 'bad operation',
    body: body((b) => (b.request.operation = 'PATCH')),
    status: 400,
    message: 'request.operation must be CREATE, UPDATE, DELETE or CONNECT, got "PATCH"',
    uid: UID,
  },
  {
    name: 'missing object for UPDATE',
    body: body((b) => delete b.request.object),
    status: 400,
    message: 'request.object must be a Kubernetes object with metadata for UPDATE',
    uid: UID,
  },
  {
    name: 'object without metadata',
    body: body((b) => delete b.request.object.metadata),
    status: 400,
    message: 'request.object must be a Kubernetes object with metadata for UPDATE',
    uid: UID,
  },
  {
    name: 'labels not strings',
    body: body((b) => (b.request.object.metadata.labels = { 'bluegreen.io/app': 7 })),
    status: 400,
    message: 'request.object must be a Kubernetes object with metadata for UPDATE',
    uid: UID,
  },
  {
    name: 'kind ConfigMap',
    body: body((b) => {
      b.request.kind = { group: '', version: 'v1', kind: 'ConfigMap' };
      b.request.resource = { group: '', version: 'v1', resource: 'configmaps' };
    }),
    status: 400,
    message: 'this webhook handles deployments, deployments/scale and services, not core/configmaps (ConfigMap)',
    uid: UID,
  },
  {
    name: 'subresource status',
    body: body((b) => (b.request.subResource = 'status')),
    status: 400,
    message: 'not apps/deployments/status (Deployment)',
    uid: UID,
  },
  { name: 'CONNECT', body: body((b) => (b.request.operation = 'CONNECT')), status: 400, message: 'CONNECT requests are not handled', uid: UID },
  {
    name: 'body over 4 MiB',
    body: body((b) => (b.request.options = { pad: 'x'.repeat(BODY_LIMIT_BYTES) })),
    status: 413,
    message: `request body over ${BODY_LIMIT_BYTES} bytes`,
    uid: '',
  },
  // The API server always sends application/json; the webhook reads the body as JSON
  // whatever the header says (it is validated strictly anyway), so a valid review is answered.
  {
    name: 'wrong content-type (text/plain) with a valid body: answered normally',
    body: body(),
    headers: { 'content-type': 'text/plain' },
    status: 200,
    message: '',
    uid: UID,
  },
  { name: 'no content-type with a valid body: answered normally', body: body(), headers: { 'content-type': '' }, status: 200, message: '', uid: UID },
  { name: 'gzip-encoded valid body: answered normally', body: gzipSync(body()), headers: { 'content-encoding': 'gzip' }, status: 200, message: '', uid: UID },
  { name: 'unknown content-encoding', body: body(), headers: { 'content-encoding': 'snappy' }, status: 400, message: 'malformed AdmissionReview', uid: '' },
  {
    name: 'unsupported charset',
    body: body(),
    headers: { 'content-type': 'application/json; charset=latin1' },
    status: 400,
    message: 'malformed AdmissionReview',
    uid: '',
  },
  { name: 'GET /mutate', method: 'GET', path: '/mutate', status: 405, message: '/mutate takes POST with an AdmissionReview' },
  { name: 'PUT /validate', method: 'PUT', path: '/validate', body: body(), status: 405, message: '/validate takes POST with an AdmissionReview' },
  { name: 'unknown path', path: '/admit', body: body(), status: 404, message: 'not found: this server answers POST /mutate, POST /validate' },
  { name: "the apiserver's own form, /mutate?timeout=10s: answered normally", path: '/mutate?timeout=10s', body: body(), status: 200, message: '', uid: UID },
  { name: '/Validate/ (case and trailing slash, as express matches): answered normally', path: '/Validate/', body: body(), status: 200, message: '', uid: UID },
  { name: 'POST /mutatex', path: '/mutatex', body: body(), status: 404, message: 'not found' },
  { name: 'POST /mutate/extra', path: '/mutate/extra', body: body(), status: 404, message: 'not found' },
  { name: 'GET /mutate?timeout=10s', method: 'GET', path: '/mutate?timeout=10s', status: 405, message: '/mutate takes POST with an AdmissionReview' },
  { name: 'POST /healthz', path: '/healthz', body: '{}', status: 404, message: 'not found' },
  {
    name: 'deeply nested JSON (10k levels) in a field the webhook does not read',
    body: deepInside((b) => (b.request.options = '__DEEP__'), 10_000),
    status: 200,
    message: '',
    uid: UID,
  },
  {
    name: "deeply nested JSON (10k levels) inside the live object's pod template: compared without recursion trouble, too deep to record: refused",
    body: deepInside((b) => (b.request.object.spec.template.spec.extra = '__DEEP__'), 10_000),
    status: 200,
    message: 'is nested too deeply to record for shop-green (idle); nothing was changed',
    uid: UID,
  },
  {
    name: 'deeply nested JSON (10k levels) as a Service selector: it has no slot key, refused',
    path: '/validate',
    body: (() => {
      const svc = loadFixture('service-purple.1.validate.json').review as unknown as Record<string, any>;
      svc.request.object.spec.selector = '__DEEP__';
      return JSON.stringify(svc).replace('"__DEEP__"', deep(10_000));
    })(),
    status: 200,
    message: 'must keep slot in its selector',
    uid: loadFixture('service-purple.1.validate.json').review.request.uid,
  },
  {
    name: 'huge string field under the limit (3 MiB annotation)',
    body: body((b) => (b.request.object.metadata.annotations.big = 'y'.repeat(3 * 1024 * 1024))),
    status: 200,
    message: '',
    uid: UID,
  },
  {
    name: 'unicode and NUL in names and uid',
    body: body((b) => {
      b.request.uid = 'uid-\u2603-\u0000-\ud83d\ude00';
      b.request.name = 'shop-blue\u0000';
      b.request.object.metadata.name = 'sh\u00f6p-\u0000-\u202e';
      b.request.object.metadata.labels['bluegreen.io/app'] = 'sh\u00f6p\u0000';
      b.request.oldObject.metadata.labels['bluegreen.io/app'] = 'sh\u00f6p\u0000';
    }),
    status: 200,
    message: '',
    uid: 'uid-\u2603-\u0000-\ud83d\ude00',
  },
  {
    name: 'a lone surrogate escape in a label',
    body: body((b) => (b.request.object.metadata.labels.team = '__LONE__')).replace('"__LONE__"', '"\\ud800"'),
    status: 200,
    message: '',
    uid: UID,
  },
  {
    name: 'duplicate keys: the last apiVersion wins',
    body: body().replace(/^\{/, '{"apiVersion":"admission.k8s.io/v1",').replace(/\}$/, ',"apiVersion":"v2"}'),
    status: 400,
    message: 'apiVersion must be admission.k8s.io/v1, got "v2"',
    uid: UID,
  },
  {
    name: '__proto__ keys',
    body: body().replace(/^\{/, '{"__proto__":{"polluted":true},').replace('"request":{', '"request":{"__proto__":{"uid":"x"},'),
    status: 200,
    message: '',
    uid: UID,
  },
  // Ill-typed fields inside the objects: the API server never sends them, but a crafted
  // request must get a 400, not a 500.
  {
    name: "the live object's template annotations are a string",
    body: body((b) => (b.request.object.spec.template.metadata.annotations = 'x')),
    status: 400,
    message: 'malformed AdmissionReview',
    uid: UID,
  },
  {
    name: "the live object's containers are an object",
    body: body((b) => (b.request.object.spec.template.spec.containers = { app: { image: 'x' } })),
    status: 400,
    message: 'malformed AdmissionReview',
    uid: UID,
  },
  {
    name: "the live object's spec is null",
    body: body((b) => (b.request.object.spec = null)),
    status: 200,
    message: 'the selector of Deployment shop-blue cannot change',
    uid: UID,
  },
];

describe('admissionEndpoint: the paths the admission handler takes before express', () => {
  it.each([
    { url: '/mutate', want: 'mutate' },
    { url: '/validate', want: 'validate' },
    { url: '/mutate?timeout=10s', want: 'mutate' },
    { url: '/validate/', want: 'validate' },
    { url: '/VALIDATE/?timeout=30s', want: 'validate' },
    { url: '/mutate/x', want: undefined },
    { url: '/mutate//', want: undefined },
    { url: '//mutate', want: undefined },
    { url: '/mutat', want: undefined },
    { url: '/', want: undefined },
    { url: '', want: undefined },
    { url: '/mutate-and-more-than-ten-characters', want: undefined },
    { url: undefined, want: undefined },
  ])('$url -> $want', ({ url, want }) => {
    expect(admissionEndpoint(url)).toBe(want);
  });
});

describe('malformed and unexpected requests, by name', () => {
  it('has at least 25 cases, each named once', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(25);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it.each(CASES)('$name -> $status', async (c) => {
    const r = await send(h, pair.ca, {
      method: c.method ?? 'POST',
      path: c.path ?? '/mutate',
      ...(c.body === undefined ? {} : { body: c.body }),
      headers: c.headers ?? {},
    });
    expect(r.status, r.text.slice(0, 300)).toBe(c.status);
    if (c.status === 200 || c.status === 400 || c.status === 413) {
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(r.json.apiVersion).toBe('admission.k8s.io/v1');
      expect(r.json.kind).toBe('AdmissionReview');
      if (c.uid !== undefined) expect(r.json.response.uid).toBe(c.uid);
      if (c.status !== 200) {
        expect(r.json.response.allowed).toBe(false);
        expect(r.json.response.status.code).toBe(c.status);
      }
    }
    if (c.message) {
      const msg = r.json?.response?.status?.message ?? r.json?.error ?? r.text;
      if (typeof c.message === 'string') expect(msg).toContain(c.message);
      else expect(msg).toMatch(c.message);
    }
    if (c.method === 'GET' || c.method === 'PUT') expect(r.headers.allow).toBe('POST');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a valid live set-image through HTTPS is redirected', async () => {
    const before = h.redirects.length;
    const r = await post('/mutate', body());
    expect(r.status).toBe(200);
    expect(r.json.response.uid).toBe(UID);
    expect(r.json.response.allowed).toBe(true);
    expect(r.json.response.patchType).toBe('JSONPatch');
    expect(r.json.response.warnings).toEqual(["image change redirected to shop-green (idle); run 'kubectl bg switch shop -n fixtures' when it is ready"]);
    expect(h.redirects.length).toBe(before + 1);
  });
});

// ---- fuzz -----------------------------------------------------------------

/** mulberry32: small, seeded, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function fuzzer(seed: number) {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const randomValue = (depth = 0): Json => {
    switch (int(depth > 2 ? 7 : 10)) {
      case 0:
        return null;
      case 1:
        return rnd() < 0.5;
      case 2:
        return pick([0, -1, 1.5, 1e308, -0, 2 ** 53 + 1, 5]);
      case 3:
        return pick(['', 'blue', 'green', 'purple', 'UPDATE', 'DELETE', 'Deployment', 'Service', '\u0000', '\u{1F600}', 'x'.repeat(int(5000))]);
      case 4:
        return pick(['CREATE', 'UPDATE', 'DELETE', 'CONNECT', 'apps', 'v1', 'scale', 'status', 'admission.k8s.io/v1']);
      case 5:
        return {};
      case 6:
        return [];
      case 7:
        return Array.from({ length: int(4) }, () => randomValue(depth + 1));
      default:
        return Object.fromEntries(
          Array.from({ length: int(4) }, (_, i) => [pick(['metadata', 'spec', 'labels', 'template', 'selector', `k${i}`]), randomValue(depth + 1)]),
        );
    }
  };
  /** Every path to a value inside v, shallow first. */
  const paths = (v: Json, at: (string | number)[] = [], out: (string | number)[][] = []) => {
    out.push(at);
    if (out.length > 4000) return out;
    if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
    else if (v && typeof v === 'object') for (const k of Object.keys(v)) paths(v[k]!, [...at, k], out);
    return out;
  };
  const parentOf = (root: Json, p: (string | number)[]) => {
    let cur: any = root;
    for (const k of p.slice(0, -1)) cur = cur[k];
    return cur;
  };
  const KINDS = [
    { kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, resource: { group: 'apps', version: 'v1', resource: 'deployments' } },
    { kind: { group: 'autoscaling', version: 'v1', kind: 'Scale' }, resource: { group: 'apps', version: 'v1', resource: 'deployments' }, subResource: 'scale' },
    { kind: { group: '', version: 'v1', kind: 'Service' }, resource: { group: '', version: 'v1', resource: 'services' } },
    { kind: { group: '', version: 'v1', kind: 'ConfigMap' }, resource: { group: '', version: 'v1', resource: 'configmaps' } },
  ];

  const structural: { name: string; apply: (b: any) => void }[] = [
    {
      name: 'delete a field',
      apply: (b) => {
        const ps = paths(b).filter((p) => p.length > 0);
        const p = pick(ps);
        const parent = parentOf(b, p);
        if (Array.isArray(parent)) parent.splice(p[p.length - 1] as number, 1);
        else delete parent[p[p.length - 1]!];
      },
    },
    {
      name: 'replace a field with a random value',
      apply: (b) => {
        const ps = paths(b).filter((p) => p.length > 0);
        const p = pick(ps);
        parentOf(b, p)[p[p.length - 1]!] = randomValue();
      },
    },
    {
      name: 'replace a request-level field',
      apply: (b) => {
        if (b?.request && typeof b.request === 'object')
          b.request[pick(['uid', 'kind', 'resource', 'operation', 'object', 'oldObject', 'name', 'namespace', 'userInfo', 'dryRun', 'subResource'])] =
            randomValue();
      },
    },
    {
      name: 'duplicate a subtree elsewhere',
      apply: (b) => {
        const ps = paths(b).filter((p) => p.length > 0);
        const from = pick(ps);
        const to = pick(ps);
        const v = structuredClone(parentOf(b, from)[from[from.length - 1]!]);
        parentOf(b, to)[to[to.length - 1]!] = v;
      },
    },
    {
      name: 'swap the operation',
      apply: (b) => {
        if (b?.request && typeof b.request === 'object') b.request.operation = pick(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);
      },
    },
    {
      name: 'swap the kind',
      apply: (b) => {
        if (b?.request && typeof b.request === 'object') {
          const k = pick(KINDS);
          b.request.kind = k.kind;
          b.request.resource = k.resource;
          if (k.subResource) b.request.subResource = k.subResource;
          else delete b.request.subResource;
        }
      },
    },
    {
      name: 'swap object and oldObject',
      apply: (b) => {
        if (b?.request && typeof b.request === 'object') [b.request.object, b.request.oldObject] = [b.request.oldObject, b.request.object];
      },
    },
    {
      name: 'flip dryRun',
      apply: (b) => {
        if (b?.request && typeof b.request === 'object') b.request.dryRun = !b.request.dryRun;
      },
    },
  ];
  const textual: { name: string; apply: (s: string) => string }[] = [
    { name: 'truncate', apply: (s) => s.slice(0, int(s.length)) },
    { name: 'duplicate the body', apply: (s) => s + s },
    {
      name: 'flip a byte',
      apply: (s) => {
        const i = int(s.length);
        return s.slice(0, i) + String.fromCharCode(int(128)) + s.slice(i + 1);
      },
    },
    {
      name: 'cut a slice out',
      apply: (s) => {
        const i = int(s.length);
        return s.slice(0, i) + s.slice(i + int(200));
      },
    },
  ];

  return (bases: string[]): { body: string; endpoint: 'mutate' | 'validate'; what: string } => {
    const src = pick(bases);
    const b = JSON.parse(src);
    const what: string[] = [];
    for (let n = 1 + int(3); n > 0; n--) {
      const m = pick(structural);
      try {
        m.apply(b);
      } catch {
        /* a mutation that does not fit this body */
      }
      what.push(m.name);
    }
    let text = JSON.stringify(b) ?? 'null';
    if (rnd() < 0.15) {
      const t = pick(textual);
      text = t.apply(text);
      what.push(t.name);
    }
    return { body: text, endpoint: rnd() < 0.5 ? 'mutate' : 'validate', what: what.join(' + ') };
  };
}

describe('a seeded fuzz run', () => {
  const SEED = 20301;
  const TOTAL = 10_000;

  it(`${TOTAL} mutated fixture bodies: every answer is 200, 400 or 413, never a 5xx or a socket error`, async () => {
    const bases = fixtureFiles().map((f) => JSON.stringify(loadFixture(f).review));
    const next = fuzzer(SEED);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca: pair.ca });
    const statuses = new Map<string, number>();
    const bad: string[] = [];
    let tried = 0;
    let i = 0;
    const worker = async () => {
      while (i < TOTAL) {
        const n = i++;
        const { body: b, endpoint, what } = next(bases);
        let key: string;
        try {
          const r = await send(h, pair.ca, { path: `/${endpoint}`, body: b, agent });
          key = String(r.status);
          if (![200, 400, 413].includes(r.status) || !r.json || r.json.kind !== 'AdmissionReview')
            bad.push(`#${n} ${endpoint} [${what}] -> ${r.status} ${r.text.slice(0, 160)}`);
        } catch (e) {
          key = `error ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
          bad.push(`#${n} ${endpoint} [${what}] -> ${key}`);
        }
        tried++;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    agent.destroy();
    console.log(`fuzz: seed ${SEED}, ${tried} requests tried: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    expect(tried).toBe(TOTAL);
    // Enough of them got through to a decision, not only to the parser.
    expect(statuses.get('200') ?? 0).toBeGreaterThan(TOTAL / 10);
    expect(bad.slice(0, 12), `${bad.length} bad answers, first ones:\n${bad.slice(0, 12).join('\n')}`).toEqual([]);
  }, 120_000);

  it('the server still answers /healthz and a valid fixture correctly afterwards', async () => {
    const health = await send(h, pair.ca, { method: 'GET', path: '/healthz' });
    expect([health.status, health.text]).toEqual([200, 'ok']);
    const f = loadFixture('delete-live.1.validate.json');
    const r = await post('/validate', JSON.stringify(f.review));
    expect(r.status).toBe(200);
    expect(r.json.response.uid).toBe(f.review.request.uid);
    expect(r.json.response.allowed).toBe(false);
    expect(f.kubectl.stderr).toContain(r.json.response.status.message);
  });

  it('the fuzzer is deterministic', () => {
    const bases = [JSON.stringify(setImage.review)];
    const a = fuzzer(7);
    const b = fuzzer(7);
    for (let n = 0; n < 50; n++) expect(a(bases)).toEqual(b(bases));
  });
});

// ---- TLS, health, metrics ---------------------------------------------------

function tlsConnect(port: number, o: tls.ConnectionOptions): Promise<{ protocol: string | null; fingerprint256: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ...o });
    s.once('secureConnect', () => {
      const out = { protocol: s.getProtocol(), fingerprint256: s.getPeerCertificate().fingerprint256 };
      s.end();
      resolve(out);
    });
    s.once('error', reject);
  });
}

const OLD_TLS: tls.ConnectionOptions = { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' };

describe('TLS', () => {
  it('this client really can speak TLS 1.1 (control: a server that allows it)', async () => {
    const srv = tls.createServer({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' }, (s) => s.end());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    try {
      const got = await tlsConnect((srv.address() as { port: number }).port, { ...OLD_TLS, ca: pair.ca });
      expect(got.protocol).toBe('TLSv1.1');
    } finally {
      srv.close();
    }
  });

  it.each([
    { name: 'TLS 1.0 only', o: { ...OLD_TLS, maxVersion: 'TLSv1' as const } },
    { name: 'TLS 1.0 and 1.1', o: OLD_TLS },
  ])('$name is refused by the server (protocol_version alert)', async ({ o }) => {
    await expect(tlsConnect(h.running.port, { ...o, ca: pair.ca })).rejects.toMatchObject({ code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
  });

  it.each([
    { max: 'TLSv1.2' as const, protocol: 'TLSv1.2' },
    { max: 'TLSv1.3' as const, protocol: 'TLSv1.3' },
  ])('$protocol is accepted, with a certificate the CA vouches for', async ({ max, protocol }) => {
    const got = await tlsConnect(h.running.port, { maxVersion: max, ca: pair.ca, servername: 'localhost' });
    expect(got.protocol).toBe(protocol);
    expect(got.fingerprint256).toBe(new X509Certificate(pair.cert).fingerprint256);
  });

  it('a client that does not trust the CA is refused', async () => {
    await expect(tlsConnect(h.running.port, {})).rejects.toThrow(/self-signed|unable to verify|certificate/i);
  });

  it('plain HTTP to the port fails', async () => {
    const attempt = new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: h.running.port, method: 'GET', path: '/healthz' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.setTimeout(5000, () => req.destroy(new Error('timeout')));
      req.end();
    });
    await expect(attempt).rejects.toThrow();
  });
});

describe('health and metrics', () => {
  it('/healthz', async () => {
    const r = await send(h, pair.ca, { method: 'GET', path: '/healthz' });
    expect([r.status, r.text, r.headers['content-type']]).toEqual([200, 'ok', 'text/plain; charset=utf-8']);
  });

  it.each([
    { name: 'synced', synced: true, shuttingDown: false, status: 200, text: 'ok' },
    { name: 'cache not synced', synced: false, shuttingDown: false, status: 503, text: 'not ready: the cache has not synced, or a watch is stale' },
    { name: 'shutting down', synced: true, shuttingDown: true, status: 503, text: 'shutting down' },
  ])('/readyz: $name -> $status', async ({ synced, shuttingDown, status, text }) => {
    h.store.synced = synced;
    h.state.shuttingDown = shuttingDown;
    try {
      const r = await send(h, pair.ca, { method: 'GET', path: '/readyz' });
      expect([r.status, r.text]).toEqual([status, text]);
    } finally {
      h.store.synced = true;
      h.state.shuttingDown = false;
    }
  });

  it('while shutting down, keep-alive responses say connection: close', async () => {
    const agent = new https.Agent({ keepAlive: true, ca: pair.ca });
    try {
      const before = await send(h, pair.ca, { method: 'GET', path: '/healthz', agent });
      expect(before.headers.connection).toBe('keep-alive');
      h.state.shuttingDown = true;
      const during = await send(h, pair.ca, { method: 'GET', path: '/healthz', agent });
      expect(during.headers.connection).toBe('close');
    } finally {
      h.state.shuttingDown = false;
      agent.destroy();
    }
  });

  it('not synced: an enrolled request is answered 503 (the failurePolicy applies), uid echoed', async () => {
    h.store.synced = false;
    try {
      const r = await post('/mutate', body());
      expect(r.status).toBe(503);
      expect(r.json.response.uid).toBe(UID);
      expect(r.json.response.allowed).toBe(false);
    } finally {
      h.store.synced = true;
    }
  });

  it('/metrics exposes the request, decision, redirect, latency and bad-request series', async () => {
    const m = await startServer(pair);
    try {
      await send(m, pair.ca, { path: '/mutate', body: body() });
      await send(m, pair.ca, { path: '/validate', body: JSON.stringify(loadFixture('delete-live.1.validate.json').review) });
      await send(m, pair.ca, { path: '/mutate', body: '{' });
      await send(m, pair.ca, { path: '/mutate', body: body((b) => (b.request.subResource = 'status')) });
      const r = await send(m, pair.ca, { method: 'GET', path: '/metrics' });
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      const lines = r.text.split('\n');
      for (const want of [
        'kube_bluegreen_admission_requests_total{endpoint="mutate",resource="deployments",operation="UPDATE"} 1',
        'kube_bluegreen_admission_requests_total{endpoint="mutate",resource="deployments/status",operation="UPDATE"} 1',
        'kube_bluegreen_admission_requests_total{endpoint="validate",resource="deployments",operation="DELETE"} 1',
        'kube_bluegreen_admission_decisions_total{endpoint="mutate",outcome="redirected"} 1',
        'kube_bluegreen_admission_decisions_total{endpoint="validate",outcome="denied"} 1',
        'kube_bluegreen_redirects_total{result="recorded"} 1',
        'kube_bluegreen_bad_requests_total{reason="undecodable"} 1',
        'kube_bluegreen_bad_requests_total{reason="unexpected-kind"} 1',
        // The undecodable body never reached the handler.
        'kube_bluegreen_admission_duration_seconds_count{endpoint="mutate"} 2',
        'kube_bluegreen_admission_duration_seconds_count{endpoint="validate"} 1',
      ])
        expect(lines, want).toContain(want);
      expect(r.text).toMatch(/^kube_bluegreen_admission_duration_seconds_bucket\{le="0.0005",endpoint="mutate"\} \d+$/m);
      expect(r.text).toMatch(/^kube_bluegreen_process_cpu_user_seconds_total \d/m);
    } finally {
      await m.running.close(1000);
    }
  });
});

// ---- lifecycle ------------------------------------------------------------------

describe('graceful close and certificate swaps', () => {
  it('a request in flight when close() is called still completes with 200; then the server stops', async () => {
    const g = await startServer(pair);
    let release!: () => void;
    g.gate = new Promise<void>((r) => (release = r));
    const entered = new Promise<void>((r) => (g.onRedirect = r));
    // On a keep-alive connection, which the server must close itself once the response is out.
    const agent = new https.Agent({ keepAlive: true, ca: pair.ca });
    const inflight = send(g, pair.ca, { path: '/mutate', body: body(), agent });
    await entered; // the request is inside the handler, waiting on the redirect's checks
    let closed = false;
    const closing = g.running.close(10_000).then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(false);
    // No new connections once close() has been called.
    await expect(tlsConnect(g.running.port, { ca: pair.ca })).rejects.toThrow(/ECONNREFUSED/);
    release();
    const r = await inflight;
    expect(r.status).toBe(200);
    expect(r.json.response.uid).toBe(UID);
    expect(r.json.response.allowed).toBe(true);
    const t0 = Date.now();
    await closing;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(g.running.server.listening).toBe(false);
    expect(r.headers.connection).toBe('keep-alive');
    agent.destroy();
  });

  it('an idle keep-alive connection does not hold close() up', async () => {
    const g = await startServer(pair);
    const agent = new https.Agent({ keepAlive: true, ca: pair.ca });
    try {
      expect((await send(g, pair.ca, { method: 'GET', path: '/healthz', agent })).headers.connection).toBe('keep-alive');
      const t0 = Date.now();
      await g.running.close(10_000);
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      agent.destroy();
    }
  });

  it('setCertificate: new connections see the new certificate, TLS 1.1 still refused', async () => {
    const g = await startServer(pair);
    try {
      const fp1 = new X509Certificate(pair.cert).fingerprint256;
      const fp2 = new X509Certificate(pair2.cert).fingerprint256;
      expect(fp1).not.toBe(fp2);
      expect((await tlsConnect(g.running.port, { ca: pair.ca })).fingerprint256).toBe(fp1);
      g.running.setCertificate(pair2);
      expect((await tlsConnect(g.running.port, { ca: pair2.ca })).fingerprint256).toBe(fp2);
      await expect(tlsConnect(g.running.port, { ca: pair.ca })).rejects.toThrow();
      await expect(tlsConnect(g.running.port, { ...OLD_TLS, ca: pair2.ca })).rejects.toMatchObject({ code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
      const r = await send(g, pair2.ca, { path: '/mutate', body: body() });
      expect(r.status).toBe(200);
    } finally {
      await g.running.close(1000);
    }
  });
});
