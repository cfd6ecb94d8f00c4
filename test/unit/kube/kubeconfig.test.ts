// The kubeconfig reader (src/kube/kubeconfig.ts, credentials.ts) against the shared table
// (test/fixtures/kubeconfig-cases.ts), side by side with @kubernetes/client-node on the same
// files; kubectl's leg of the same table is test/e2e/kubeconfig.test.ts.
import https from 'node:https';
import { rmSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { Credentials, parseExecCredential } from '../../../src/kube/credentials.ts';
import { type ExecConfig, loadKubeconfig, type ResolvedKubeconfig } from '../../../src/kube/kubeconfig.ts';
import { type AuthSummary, KUBECONFIG_CASES, type KubeconfigCase, materialize } from '../../fixtures/kubeconfig-cases.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setup(c: KubeconfigCase) {
  const m = materialize(c);
  dirs.push(m.dir);
  // HOME points into the case's directory, so ~/.kube/config is never the real one.
  const env = { HOME: m.dir, ...(m.KUBECONFIG !== undefined ? { KUBECONFIG: m.KUBECONFIG } : {}) };
  return { ...m, env };
}

/** The reader's answer in the table's shape. */
async function viaReader(c: KubeconfigCase): Promise<{ summary: AuthSummary; cfg: ResolvedKubeconfig }> {
  const m = setup(c);
  const cfg = loadKubeconfig({ kubeconfig: m.kubeconfig, context: c.context, env: m.env, home: m.dir });
  const cr = await new Credentials(cfg).forRequest();
  const { authorization, ...imp } = cr.headers;
  return {
    cfg,
    summary: {
      server: cfg.server,
      namespace: cfg.namespace,
      ...(authorization ? { authorization: String(authorization) } : {}),
      ...(cr.cert ? { clientCert: cr.cert.toString() } : {}),
      ...(cfg.tls.ca ? { ca: cfg.tls.ca.toString() } : {}),
      insecure: cfg.tls.insecureSkipTLSVerify,
      ...(cfg.tls.servername ? { servername: cfg.tls.servername } : {}),
      ...(Object.keys(imp).length ? { impersonate: imp } : {}),
    },
  };
}

/** client-node's answer: KubeConfig as KubeClient used it before the reader (loadFromFile / loadFromDefault, applyToHTTPSOptions). */
async function viaClientNode(c: KubeconfigCase): Promise<AuthSummary> {
  const m = setup(c);
  const saved = { KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME };
  try {
    Object.assign(process.env, m.env);
    if (m.KUBECONFIG === undefined) delete process.env.KUBECONFIG;
    const kc = new KubeConfig();
    if (m.kubeconfig) kc.loadFromFile(m.kubeconfig);
    else kc.loadFromDefault();
    if (c.context) kc.setCurrentContext(c.context);
    const o: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(o);
    (o.agent as https.Agent | undefined)?.destroy();
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('no current cluster');
    const headers = { ...(o.headers as Record<string, string>) };
    const authorization = headers.Authorization ?? (o.auth ? `Basic ${Buffer.from(o.auth).toString('base64')}` : undefined);
    delete headers.Authorization;
    const imp = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    return {
      server: cluster.server,
      namespace: kc.getContextObject(kc.getCurrentContext())?.namespace || 'default',
      ...(authorization ? { authorization } : {}),
      ...(o.cert ? { clientCert: o.cert.toString() } : {}),
      ...(o.ca ? { ca: o.ca.toString() } : {}),
      insecure: o.rejectUnauthorized === false,
      ...(o.servername ? { servername: o.servername } : {}),
      ...(Object.keys(imp).length ? { impersonate: imp } : {}),
    };
  } finally {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
}

async function outcome(f: () => Promise<AuthSummary>): Promise<AuthSummary | { error: string }> {
  try {
    return await f();
  } catch (e) {
    return { error: (e as Error).message };
  }
}

function expectOutcome(got: AuthSummary | { error: string }, want: AuthSummary | { error: RegExp }) {
  if ('error' in want) {
    expect(got).toHaveProperty('error');
    expect((got as { error: string }).error).toMatch(want.error);
  } else expect(got).toEqual(want);
}

describe('kubeconfig: the reader authenticates as kubectl does', () => {
  it.each(KUBECONFIG_CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const got = await outcome(async () => (await viaReader(c)).summary);
    expectOutcome(got, c.want);
    if (!('error' in c.want)) expect((await viaReader(c)).cfg.fallback).toEqual(c.fallback ?? []);
  });
});

describe('kubeconfig: @kubernetes/client-node on the same table (its differences written down)', () => {
  it.each(KUBECONFIG_CASES.map((c) => [c.clientNode === 'same' ? `${c.name}: same` : `${c.name}: ${c.clientNode.differs}`, c] as const))('%s', async (_, c) => {
    const got = await outcome(() => viaClientNode(c));
    expectOutcome(got, c.clientNode === 'same' ? c.want : (c.clientNode.got ?? c.want));
  });
});

describe('kubeconfig: in-cluster service account', () => {
  const files: Record<string, string> = { '/sa/token': 'sa-token\n', '/sa/ca.crt': 'CA', '/sa/namespace': 'kube-bluegreen\n' };
  const readFile = (p: string) => {
    if (!(p in files)) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
    return Buffer.from(files[p]!);
  };
  const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

  it.each([
    ['inCluster: true', { inCluster: true }, 'https://10.96.0.1:443', 'kube-bluegreen'],
    ['no kubeconfig file at all, in a pod', { home: '/nohome' }, 'https://10.96.0.1:443', 'kube-bluegreen'],
    ['POD_NAMESPACE wins over the namespace file', { inCluster: true, env: { ...env, POD_NAMESPACE: 'ns-env' } }, 'https://10.96.0.1:443', 'ns-env'],
    ['an IPv6 service host', { inCluster: true, env: { ...env, KUBERNETES_SERVICE_HOST: 'fd00::1' } }, 'https://[fd00::1]:443', 'kube-bluegreen'],
  ])('%s', async (_, o, server, namespace) => {
    const cfg = loadKubeconfig({ env, ...o, readFile, inClusterDir: '/sa' });
    expect({ source: cfg.source, server: cfg.server, namespace: cfg.namespace, ca: cfg.tls.ca?.toString(), auth: cfg.auth }).toEqual({
      source: 'in-cluster',
      server,
      namespace,
      ca: 'CA',
      auth: { type: 'tokenFile', path: '/sa/token' },
    });
  });

  it('outside a pod with no kubeconfig: a clear error', () => {
    expect(() => loadKubeconfig({ env: {}, home: '/nohome', readFile, inClusterDir: '/sa' })).toThrow(/no kubeconfig: none of \/nohome\/\.kube\/config exists/);
  });
});

describe('exec credential plugins', () => {
  const exec: ExecConfig = { apiVersion: 'client.authentication.k8s.io/v1', command: 'cred', args: [], env: [], provideClusterInfo: true };
  const cfg: ResolvedKubeconfig = {
    source: 'kubeconfig',
    files: [],
    context: 'a',
    cluster: 'c',
    user: 'u',
    server: 'https://x',
    namespace: 'default',
    tls: { insecureSkipTLSVerify: false },
    auth: { type: 'exec', exec },
    clusterInfo: { server: 'https://x' },
    fallback: [],
  };
  const credential = (status: object) => JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status });

  it('runs once for many parallel requests, and hands the cluster info over', async () => {
    const infos: string[] = [];
    const creds = new Credentials(cfg, {
      runExec: async (_e, info) => {
        infos.push(info);
        await new Promise((r) => setTimeout(r, 20));
        return credential({ token: 'abc' });
      },
    });
    const all = await Promise.all(Array.from({ length: 10 }, () => creds.forRequest()));
    expect(all.map((c) => c.headers.authorization)).toEqual(Array(10).fill('Bearer abc'));
    expect(creds.execRuns).toBe(1);
    expect(JSON.parse(infos[0]!)).toEqual({
      apiVersion: 'client.authentication.k8s.io/v1',
      kind: 'ExecCredential',
      spec: { interactive: false, cluster: { server: 'https://x' } },
    });
    await creds.forRequest();
    expect(creds.execRuns).toBe(1);
  });

  it('runs again once the credential has expired, and after invalidate() (a 401)', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    let n = 0;
    const creds = new Credentials(cfg, { now: () => now, runExec: async () => credential({ token: `t${++n}`, expirationTimestamp: '2026-01-01T00:10:00Z' }) });
    expect((await creds.forRequest()).headers.authorization).toBe('Bearer t1');
    now += 5 * 60_000;
    expect((await creds.forRequest()).headers.authorization).toBe('Bearer t1');
    now += 6 * 60_000;
    expect((await creds.forRequest()).headers.authorization).toBe('Bearer t2');
    creds.invalidate();
    expect((await creds.forRequest()).headers.authorization).toBe('Bearer t3');
    expect(creds.execRuns).toBe(3);
  });

  it('a failed run is not cached', async () => {
    let n = 0;
    const creds = new Credentials(cfg, {
      runExec: async () => {
        if (++n === 1) throw new Error('exec credential plugin cred exited 1');
        return credential({ token: 'ok' });
      },
    });
    await expect(creds.forRequest()).rejects.toThrow(/exited 1/);
    expect((await creds.forRequest()).headers.authorization).toBe('Bearer ok');
  });

  it.each([
    ['a client certificate', credential({ clientCertificateData: 'CERT', clientKeyData: 'KEY' }), { cert: Buffer.from('CERT'), key: Buffer.from('KEY') }],
    [
      'a token with an expiry',
      credential({ token: 't', expirationTimestamp: '2026-01-01T00:00:00Z' }),
      { token: 't', expiresAt: Date.parse('2026-01-01T00:00:00Z') },
    ],
    ['not JSON', 'oops', /not an ExecCredential/],
    [
      'another apiVersion',
      JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', status: { token: 't' } }),
      /plugin returned version/,
    ],
    ['neither token nor certificate', credential({}), /did not return/],
    ['a certificate without its key', credential({ clientCertificateData: 'CERT' }), /must both be present/],
  ])('parses %s', (_, stdout, want) => {
    if (want instanceof RegExp) expect(() => parseExecCredential(stdout, exec.apiVersion, 'cred')).toThrow(want);
    else expect(parseExecCredential(stdout, exec.apiVersion, 'cred')).toEqual(want);
  });
});
