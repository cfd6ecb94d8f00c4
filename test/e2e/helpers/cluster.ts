// Helpers for e2e tests against the local control plane that the e2e project's
// globalSetup (test/e2e/global-setup.ts) brings up. Generic on purpose: use
// them for webhook, plugin and chart tests alike.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { helm, kubectl, readClusterEnv, type ClusterEnv, type RunOptions, type RunResult } from '../../../local-cluster/control-plane.ts';
import { generateCA, issueCert, type CertRequest, type KeyPair } from '../../../local-cluster/pki.ts';

export { generateCA, helm, issueCert, kubectl };
export type { CertRequest, ClusterEnv, KeyPair, RunOptions, RunResult };

/** .cluster/env.json: kubeconfig, kubectl, helm, caCert, caKey, apiserver, home, ... */
export function clusterEnv(): ClusterEnv {
  return readClusterEnv();
}

/** The cluster CA (PEM): what a caBundle must hold for certificates from issueClusterCert(). */
export function clusterCA(): KeyPair {
  const env = clusterEnv();
  return { certPem: readFileSync(env.caCert, 'utf8'), keyPem: readFileSync(env.caKey, 'utf8') };
}

/** A certificate signed by the cluster CA (e.g. a webhook's serving cert, usage 'server', ipAddresses ['127.0.0.1']). */
export async function issueClusterCert(req: CertRequest): Promise<KeyPair & { caPem: string }> {
  const ca = clusterCA();
  return { ...(await issueCert(ca, req)), caPem: ca.certPem };
}

function describeRun(args: readonly string[], r: RunResult): string {
  return `kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`;
}

/** kubectl that throws (with its stderr) on a non-zero exit; returns stdout. */
export async function kubectlOk(args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await kubectl(args, opts);
  if (r.code !== 0) throw new Error(describeRun(args, r));
  return r.stdout;
}

/** `kubectl <args> -o json`, parsed. Throws on a non-zero exit. */
export async function kubectlJson<T = any>(args: readonly string[], opts: RunOptions = {}): Promise<T> {
  return JSON.parse(await kubectlOk([...args, '-o', 'json'], opts)) as T;
}

/** `kubectl apply -f -` of YAML/JSON text or of objects (a list is sent as a v1 List). Returns stdout. */
export async function apply(manifest: string | object | readonly object[], opts: { namespace?: string } = {}): Promise<string> {
  const input =
    typeof manifest === 'string' ? manifest : JSON.stringify(Array.isArray(manifest) ? { apiVersion: 'v1', kind: 'List', items: manifest } : manifest);
  return kubectlOk([...(opts.namespace ? ['-n', opts.namespace] : []), 'apply', '-f', '-'], { input });
}

export interface WaitOptions {
  /** Default 30 s. */
  timeoutMs?: number;
  /** Default 200 ms. */
  intervalMs?: number;
  /** What is being waited for, for the timeout error. */
  message?: string;
}

/**
 * Calls fn until it returns a value other than undefined, null or false, and
 * returns that value. Errors thrown by fn count as "not yet". On timeout it
 * throws, with the last error or the last value seen.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitOptions = {}): Promise<Exclude<T, undefined | null | false>> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v as Exclude<T, undefined | null | false>;
      last = `last value: ${JSON.stringify(v)}`;
    } catch (e) {
      last = `last error: ${(e as Error).message}`;
    }
    if (Date.now() >= deadline) {
      throw new Error(`waitFor${opts.message ? ` ${opts.message}` : ''}: timed out after ${timeoutMs} ms (${last})`);
    }
    await sleep(opts.intervalMs ?? 200);
  }
}

export interface TestNamespace {
  name: string;
  /** Deletes the namespace (does not wait for it to be gone unless wait is true). */
  cleanup: (opts?: { wait?: boolean }) => Promise<void>;
}

/**
 * Creates a namespace named <prefix>-<random>, labelled kube-bluegreen.test/e2e=true
 * plus `labels`, and waits for its default ServiceAccount (pods are rejected before it exists).
 */
export async function createNamespace(prefix: string, opts: { labels?: Record<string, string> } = {}): Promise<TestNamespace> {
  const base =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 50) || 'test';
  const name = `${base}-${randomBytes(4).toString('hex')}`;
  await apply({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'kube-bluegreen.test/e2e': 'true', ...opts.labels } },
  });
  await waitFor(async () => (await kubectl(['-n', name, 'get', 'serviceaccount', 'default'])).code === 0, {
    message: `ServiceAccount ${name}/default`,
  });
  return {
    name,
    cleanup: async ({ wait = false } = {}) => {
      await kubectlOk(['delete', 'namespace', name, '--ignore-not-found', `--wait=${wait}`], { timeoutMs: 120_000 });
    },
  };
}
