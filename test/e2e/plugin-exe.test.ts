// The single executable (npm run plugin:dist) on a machine with no Node 24 at all: PATH
// holds only /usr/bin (this machine's Node 20) and a directory with kubectl, kubectl-bg
// (dist/bin/kubectl-bg-linux-x64) and kubectl_complete-bg. --version, status, switch and
// rollback through kubectl's plugin discovery, against the local control plane with the
// webhook running. beforeAll builds the host's executable (about 20 s).
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppStatus } from '../../src/core/status.ts';
import { sampleApp } from '../fixtures/sample-app.ts';
import { applyApps } from './helpers/apps.ts';
import { clusterEnv, createNamespace, kubectlJson, type TestNamespace, waitFor } from './helpers/cluster.ts';
import { type PluginResult, runProcess } from './helpers/plugin-cli.ts';
import { NODE, type RunningWebhook, startWebhook } from './helpers/webhook.ts';

const REPO = resolve(import.meta.dirname, '../..');
const EXE = join(REPO, 'dist/bin/kubectl-bg-linux-x64');
const ONLY_OLD = '/usr/bin:/bin';

let ns: TestNamespace;
let wh: RunningWebhook;
let binDir: string;

function env(): NodeJS.ProcessEnv {
  const c = clusterEnv();
  return { PATH: `${binDir}:${ONLY_OLD}`, HOME: c.home, KUBECONFIG: c.kubeconfig, NO_PROXY: '127.0.0.1,localhost', NO_COLOR: '1' };
}
/** `kubectl bg ARGS -n NS`: kubectl finds kubectl-bg (the executable) on PATH. */
const kubectlBg = (...args: string[]): Promise<PluginResult> => runProcess('kubectl', ['bg', ...args, '-n', ns.name], env());

beforeAll(async () => {
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error('this test runs the linux-x64 executable');
  execFileSync(NODE, [join(REPO, 'scripts/plugin-dist.ts'), '--platforms', 'linux-x64'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
  binDir = mkdtempSync(join(tmpdir(), 'kbg-exe-bin-'));
  copyFileSync(EXE, join(binDir, 'kubectl-bg'));
  copyFileSync(join(REPO, 'dist/bin/kubectl_complete-bg'), join(binDir, 'kubectl_complete-bg'));
  symlinkSync(clusterEnv().kubectl, join(binDir, 'kubectl'));
  ns = await createNamespace('plugin-exe');
  await applyApps(ns.name, sampleApp({ namespace: ns.name, app: 'shop', replicas: 2 }));
  wh = await startWebhook({ namespace: ns.name });
}, 600_000);

afterAll(async () => {
  await wh?.stop();
  await ns?.cleanup();
  if (binDir) rmSync(binDir, { recursive: true, force: true });
});

async function status(): Promise<AppStatus> {
  const r = await kubectlBg('status', 'shop', '-o', 'json');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as AppStatus;
}

async function endpointPods(): Promise<string[]> {
  const slices = await kubectlJson<{ items: { endpoints?: { targetRef?: { name?: string } }[] | null }[] }>([
    '-n',
    ns.name,
    'get',
    'endpointslices',
    '-l',
    'kubernetes.io/service-name=shop',
  ]);
  return slices.items
    .flatMap((s) => s.endpoints ?? [])
    .map((e) => e.targetRef?.name ?? '')
    .sort();
}
async function podsOf(colour: string): Promise<string[]> {
  const l = await kubectlJson<{ items: { metadata: { name: string } }[] }>(['-n', ns.name, 'get', 'pods', '-l', `app=shop,slot=${colour}`]);
  return l.items.map((p) => p.metadata.name).sort();
}

describe('kubectl bg as a single executable, no Node 24 on PATH', () => {
  it('PATH has the old Node only', () => {
    const r = spawnSync('sh', ['-c', 'command -v node && node --version'], { env: env(), encoding: 'utf8' });
    expect(r.stdout.split('\n')[0]).toBe('/usr/bin/node');
    expect(Number(r.stdout.split('\n')[1]!.replace(/^v/, '').split('.')[0])).toBeLessThan(24);
    // Every node on PATH is that one (/bin may be a link to /usr/bin).
    const all = spawnSync('sh', ['-c', 'IFS=:; for d in $PATH; do [ -x "$d/node" ] && readlink -f "$d/node"; done | sort -u'], {
      env: env(),
      encoding: 'utf8',
    });
    expect(all.stdout.trim().split('\n')).toEqual([spawnSync('readlink', ['-f', '/usr/bin/node'], { encoding: 'utf8' }).stdout.trim()]);
  });

  it('--version, directly and through kubectl', async () => {
    const direct = await runProcess(join(binDir, 'kubectl-bg'), ['--version'], env());
    const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;
    expect(direct).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
    expect(await runProcess('kubectl', ['bg', '--version'], env())).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it('completion through kubectl_complete-bg', async () => {
    const r = await runProcess('kubectl', ['__complete', 'bg', 'sw'], env());
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^switch\t/m);
  });

  it('status', async () => {
    const r = await kubectlBg('status', 'shop');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Phase:       stable');
    expect(r.stdout).toContain('Live:        blue');
    expect(await status()).toMatchObject({ live: 'blue', idle: 'green', phase: 'stable' });
  });

  it('switch --wait: the EndpointSlices hold only green pods; rollback: only blue', async () => {
    const sw = await kubectlBg('switch', 'shop', '--wait');
    expect(sw.stderr).toBe('');
    expect(sw.code).toBe(0);
    expect(sw.stdout).toContain(`switch shop in namespace ${ns.name}: blue -> green`);
    await waitFor(async () => JSON.stringify(await endpointPods()) === JSON.stringify(await podsOf('green')), {
      message: 'only green endpoints',
      timeoutMs: 30_000,
    });
    expect((await status()).live).toBe('green');

    const rb = await kubectlBg('rollback', 'shop', '--wait');
    expect(rb.stderr).toBe('');
    expect(rb.code).toBe(0);
    expect(rb.stdout).toContain('green -> blue');
    await waitFor(async () => JSON.stringify(await endpointPods()) === JSON.stringify(await podsOf('blue')), {
      message: 'only blue endpoints',
      timeoutMs: 30_000,
    });
    expect((await status()).live).toBe('blue');
  });

  it('a kubeconfig that needs client-node (auth-provider) works too: its asset is loaded on demand', async () => {
    // client-node's file auth-provider reads a token from auth-provider.config.tokenFile; the
    // reader leaves any auth-provider to client-node. The admin's token: a ServiceAccount's.
    const sa = 'exe-reader';
    await runProcess('kubectl', ['-n', ns.name, 'create', 'serviceaccount', sa], env());
    await runProcess('kubectl', ['-n', ns.name, 'create', 'rolebinding', sa, '--clusterrole=view', `--serviceaccount=${ns.name}:${sa}`], env());
    const tok = await runProcess('kubectl', ['-n', ns.name, 'create', 'token', sa], env());
    expect(tok.code).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'kbg-exe-kc-'));
    try {
      const view = JSON.parse((await runProcess('kubectl', ['config', 'view', '--raw', '--minify', '--flatten', '-o', 'json'], env())).stdout);
      const tokenFile = join(dir, 'token');
      execFileSync('sh', ['-c', `printf %s "$T" > ${tokenFile}`], { env: { T: tok.stdout.trim() } });
      const kc = {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: view.clusters,
        users: [{ name: 'sa', user: { 'auth-provider': { name: 'file', config: { tokenFile } } } }],
        contexts: [{ name: 'sa', context: { cluster: view.clusters[0].name, user: 'sa', namespace: ns.name } }],
        'current-context': 'sa',
      };
      const file = join(dir, 'config');
      execFileSync('sh', ['-c', `cat > ${file}`], { input: JSON.stringify(kc) });
      const r = await runProcess('kubectl-bg', ['status', 'shop', '--kubeconfig', file, '-o', 'json'], env());
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ live: 'blue' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
