// kubectl's leg of the kubeconfig table (test/fixtures/kubeconfig-cases.ts; the reader's and
// client-node's legs are test/unit/kube/kubeconfig.test.ts): the same files through the real
// kubectl (`kubectl config view --minify --raw --flatten`, which resolves merging, contexts and
// files as kubectl will use them) must give the reader's answer. Then real authentication
// against the local apiserver: an exec credential plugin (a ServiceAccount token), run once by
// the reader for many parallel requests, and the same user for the reader, client-node and kubectl.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient, paths } from '../../src/kube/client.ts';
import { type AuthSummary, KUBECONFIG_CASES, type KubeconfigCase, materialize } from '../fixtures/kubeconfig-cases.ts';
import { clusterEnv, createNamespace, kubectlOk, type TestNamespace } from './helpers/cluster.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const b64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString() : undefined);

/** `kubectl config view --minify --raw --flatten` of a case, as the table's summary (or its failure). */
function viaKubectl(c: KubeconfigCase): AuthSummary | { error: string } {
  const m = materialize(c);
  dirs.push(m.dir);
  const args = [
    ...(m.kubeconfig ? ['--kubeconfig', m.kubeconfig] : []),
    ...(c.context ? ['--context', c.context] : []),
    'config',
    'view',
    '--minify',
    '--raw',
    '--flatten',
    '-o',
    'json',
  ];
  let out: string;
  try {
    out = execFileSync(clusterEnv().kubectl, args, {
      env: { PATH: '/usr/bin:/bin', HOME: m.dir, ...(m.KUBECONFIG ? { KUBECONFIG: m.KUBECONFIG } : {}) },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    return { error: String((e as { stderr?: string }).stderr ?? e) };
  }
  const v = JSON.parse(out) as {
    clusters: { cluster: Record<string, any> }[];
    users?: { user: Record<string, any> }[];
    contexts: { context: Record<string, any> }[];
  };
  const cl = v.clusters[0]!.cluster;
  const u = v.users?.[0]?.user ?? {};
  const tokenFile = u.tokenFile as string | undefined;
  const authorization = tokenFile
    ? `Bearer ${readFileSync(isAbsolute(tokenFile) ? tokenFile : join(m.dir, tokenFile), 'utf8').trim()}`
    : u.token
      ? `Bearer ${u.token}`
      : u.username
        ? `Basic ${Buffer.from(`${u.username}:${u.password ?? ''}`).toString('base64')}`
        : undefined;
  const imp: Record<string, string | string[]> = {};
  if (u.as) imp['impersonate-user'] = u.as;
  if (u['as-uid']) imp['impersonate-uid'] = u['as-uid'];
  if (u['as-groups']) imp['impersonate-group'] = u['as-groups'];
  for (const [k, vs] of Object.entries((u['as-user-extra'] ?? {}) as Record<string, string[]>)) imp[`impersonate-extra-${k}`] = vs;
  return {
    server: cl.server,
    namespace: v.contexts[0]!.context.namespace || 'default',
    ...(authorization ? { authorization } : {}),
    ...(u['client-certificate-data'] ? { clientCert: b64(u['client-certificate-data']) } : {}),
    ...(cl['certificate-authority-data'] ? { ca: b64(cl['certificate-authority-data']) } : {}),
    insecure: cl['insecure-skip-tls-verify'] === true,
    ...(cl['tls-server-name'] ? { servername: cl['tls-server-name'] } : {}),
    ...(Object.keys(imp).length ? { impersonate: imp } : {}),
  };
}

describe('kubeconfig table through kubectl: the same answer as the reader', () => {
  it.each(KUBECONFIG_CASES.filter((c) => c.kubectlView !== false).map((c) => [c.name, c] as const))('%s', (_, c) => {
    const got = viaKubectl(c);
    if ('error' in c.want) expect(got).toHaveProperty('error');
    else expect(got).toEqual(c.want);
  });
});

describe('real authentication against the local apiserver', () => {
  let ns: TestNamespace;
  let dir: string;
  let kubeconfig: string;
  const sa = 'kubeconfig-e2e';

  beforeAll(async () => {
    ns = await createNamespace('kubeconfig');
    await kubectlOk(['-n', ns.name, 'create', 'serviceaccount', sa]);
    const token = (await kubectlOk(['-n', ns.name, 'create', 'token', sa])).trim();
    dir = mkdtempSync(join(tmpdir(), 'kbg-kc-auth-'));
    const cred = join(dir, 'cred');
    // An exec plugin that counts its runs: the ServiceAccount's token, after a pause (so parallel requests overlap it).
    writeFileSync(
      cred,
      `#!/bin/sh\necho run >> "${join(dir, 'runs')}"\nsleep 0.3\nprintf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "$TOKEN"\n`,
    );
    chmodSync(cred, 0o755);
    const view = JSON.parse(await kubectlOk(['config', 'view', '--raw', '--minify', '--flatten', '-o', 'json']));
    kubeconfig = join(dir, 'config');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: view.clusters,
        users: [
          {
            name: 'sa',
            user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: cred, env: [{ name: 'TOKEN', value: token }], interactiveMode: 'Never' } },
          },
        ],
        contexts: [{ name: 'sa', context: { cluster: view.clusters[0].name, user: 'sa', namespace: ns.name } }],
        'current-context': 'sa',
      }),
    );
  });
  afterAll(async () => {
    await ns?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const who = (r: { status?: { userInfo?: { username?: string } } }) => r.status?.userInfo?.username;
  const review = { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' };
  const runs = () => readFileSync(join(dir, 'runs'), 'utf8').split('\n').filter(Boolean).length;

  it('the reader runs the exec plugin once for 10 parallel requests; kubectl and client-node see the same user', async () => {
    writeFileSync(join(dir, 'runs'), '');
    const client = KubeClient.connect({ kubeconfig });
    try {
      expect(client.credentialSource).toBe('kubeconfig reader');
      const answers = await Promise.all(
        Array.from({ length: 10 }, () => client.create<{ status?: { userInfo?: { username?: string } } }>(paths.selfSubjectReviews(), review)),
      );
      const want = `system:serviceaccount:${ns.name}:${sa}`;
      expect(new Set(answers.map(who))).toEqual(new Set([want]));
      expect(runs()).toBe(1);
      expect(client.execRuns).toBe(1);

      const kubectlWho = JSON.parse(
        execFileSync(clusterEnv().kubectl, ['--kubeconfig', kubeconfig, 'auth', 'whoami', '-o', 'json'], {
          encoding: 'utf8',
          env: { PATH: '/usr/bin:/bin', HOME: dir },
        }),
      );
      expect(who(kubectlWho)).toBe(want);

      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfig);
      const o: https.RequestOptions = {};
      await kc.applyToHTTPSOptions(o);
      const body = JSON.stringify(review);
      const viaClientNode = await new Promise<string>((resolve, reject) => {
        const req = https.request(
          new URL(paths.selfSubjectReviews(), kc.getCurrentCluster()!.server),
          { ...o, method: 'POST', headers: { ...(o.headers as object), 'content-type': 'application/json' } },
          (res) => {
            let t = '';
            res.on('data', (d) => (t += d));
            res.on('end', () => resolve(t));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
      expect(who(JSON.parse(viaClientNode))).toBe(want);
    } finally {
      client.close();
    }
  });
});
