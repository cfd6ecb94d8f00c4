// Runs the real webhook process (node src/webhook/main.ts) against the local
// control plane, registered with a url clientConfig, and waits until the
// apiserver actually calls it.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WEBHOOK_CLIENT_NAME } from '../../../local-cluster/control-plane.ts';
import { clusterEnv, kubectl, waitFor } from './cluster.ts';

const REPO = resolve(import.meta.dirname, '../../..');
export const NODE = join(REPO, 'node_modules/.bin/node');

export interface RunningWebhook {
  port: number;
  url: string;
  ca: string;
  configName: string;
  /** Everything the process wrote (JSON log lines). */
  logs(): string;
  /** Graceful stop (SIGTERM), unregistering the configurations. */
  stop(): Promise<void>;
  /** SIGKILL: the configurations stay, as when a webhook crashes. */
  kill(): Promise<void>;
  /** Start again on the same port and certificate directory after kill(). */
  restart(): Promise<void>;
  /** GET a path on the webhook's HTTPS server (with the API server's client certificate). */
  get(path: string): Promise<{ status: number; body: string }>;
  /** POST a body (string or object) to a path, presenting the API server's client certificate. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<{ status: number; body: string }>;
  /** POST as anyone else: no client certificate, or one of your own. */
  postAs(client: ClientCert | undefined, path: string, body: unknown): Promise<{ status: number; body: string }>;
  /** Port of the plain-HTTP probe listener (/healthz, /readyz, /metrics). */
  probePort: number;
  pid(): number | undefined;
}

export interface StartOptions {
  configName?: string;
  excludeNamespaces?: string[];
  extraArgs?: string[];
  env?: Record<string, string>;
  /** Namespace in which to probe that the apiserver calls the webhook. */
  probeNamespace?: string;
  /**
   * Only this namespace is sent to the webhook (namespaceSelector on its name), so test
   * files sharing one cluster never see each other's webhooks. Also the probe namespace.
   */
  namespace?: string;
  /** Client authentication of the API server (the local control plane presents its certificate): default on. */
  clientAuth?: boolean;
  /** Default debug. At info level an allowed request logs nothing, so give a `probe`. */
  logLevel?: string;
  /**
   * Resolves true once a request through the apiserver shows this webhook answering (its log
   * since this start is given). Default: a dry-run create of an enrolled Service, seen in the debug log.
   */
  probe?: (logs: () => string) => Promise<boolean>;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

export interface ClientCert {
  cert: string;
  key: string;
}

/** The client certificate the local API server presents to webhooks. */
export function apiserverClientCert(): ClientCert {
  const env = clusterEnv();
  return { cert: readFileSync(env.webhookClientCert, 'utf8'), key: readFileSync(env.webhookClientKey, 'utf8') };
}

export function httpsRequest(
  port: number,
  ca: string,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
  client?: ClientCert,
) {
  return new Promise<{ status: number; body: string }>((res, rej) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca,
        ...(client ?? {}),
        headers: body !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
      },
      (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => res({ status: r.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        r.on('error', rej);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
    req.on('error', rej);
    req.end(body);
  });
}

export async function startWebhook(opts: StartOptions = {}): Promise<RunningWebhook> {
  const env = clusterEnv();
  const port = await freePort();
  const probePort = await freePort();
  const clientAuth = opts.clientAuth ?? true;
  const certDir = mkdtempSync(join(tmpdir(), 'kbg-webhook-'));
  // Always kbg-e2e-*: the e2e global setup removes such configurations left by a run that died.
  const configName = `kbg-e2e-${opts.configName ? `${opts.configName}-` : ''}${process.pid}-${port}`;
  const args = [
    join(REPO, 'src/webhook/main.ts'),
    '--kubeconfig',
    env.kubeconfig,
    '--listen',
    `127.0.0.1:${port}`,
    '--cert-dir',
    certDir,
    '--register-url',
    `https://127.0.0.1:${port}`,
    '--unregister-on-exit',
    '--webhook-config-name',
    configName,
    '--exclude-namespaces',
    ['kube-system', ...(opts.excludeNamespaces ?? [])].join(','),
    '--namespace',
    'default',
    '--leader-election-id',
    configName,
    '--shutdown-delay',
    '0',
    '--resync-interval',
    '2',
    '--probe-listen',
    `127.0.0.1:${probePort}`,
    ...(clientAuth ? ['--client-ca-file', env.caCert, '--client-names', WEBHOOK_CLIENT_NAME] : []),
    '--log-level',
    opts.logLevel ?? 'debug',
    ...(opts.namespace ? ['--namespace-match-labels', `kubernetes.io/metadata.name=${opts.namespace}`] : []),
    ...(opts.extraArgs ?? []),
  ];
  let child: ChildProcess | undefined;
  let out = '';
  let ca = '';

  const launch = async () => {
    const from = out.length;
    const c = spawn(NODE, args, { env: { ...process.env, ...opts.env, NO_PROXY: '127.0.0.1,localhost' }, stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<never>((_, rej) => c.once('exit', (code) => rej(new Error(`webhook exited (${code}) during start:\n${out.slice(-3000)}`))));
    const registered = waitFor(() => out.slice(from).includes('webhook configurations written'), { timeoutMs: 30_000, message: 'webhook registration' });
    await Promise.race([registered, exited]);
    exited.catch(() => {});
    ca = readFileSync(join(certDir, 'ca.crt'), 'utf8');
    const logs = () => out.slice(from);
    if (opts.probe) await waitFor(() => opts.probe!(logs), { timeoutMs: 20_000, intervalMs: 250, message: 'the apiserver to call the webhook' });
    else await waitForApiserverToCall(opts.namespace ?? opts.probeNamespace ?? 'default', logs);
  };
  await launch();

  // A process killed by a signal has exitCode null and signalCode set.
  const exited = (c: ChildProcess): boolean => c.exitCode !== null || c.signalCode !== null;
  const kill = async () => {
    const c = child;
    if (!c || exited(c)) return;
    await new Promise<void>((r) => {
      c.once('exit', () => r());
      c.kill('SIGKILL');
    });
  };
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    get ca() {
      return ca;
    },
    configName,
    logs: () => out,
    pid: () => child?.pid,
    stop: async () => {
      const c = child;
      if (!c || exited(c)) {
        // Crashed or killed: remove what it registered so later tests are not blocked.
        await kubectl(['delete', 'mutatingwebhookconfiguration,validatingwebhookconfiguration', configName, '--ignore-not-found']);
        return;
      }
      await new Promise<void>((r) => {
        c.once('exit', () => r());
        c.kill('SIGTERM');
      });
    },
    kill,
    restart: async () => {
      await kill();
      await launch();
    },
    probePort,
    get: (path) => httpsRequest(port, ca, 'GET', path, undefined, {}, clientAuth ? apiserverClientCert() : undefined),
    post: (path, body, headers) =>
      httpsRequest(
        port,
        ca,
        'POST',
        path,
        typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
        headers,
        clientAuth ? apiserverClientCert() : undefined,
      ),
    postAs: (client, path, body) => httpsRequest(port, ca, 'POST', path, typeof body === 'string' ? body : JSON.stringify(body), {}, client),
  };
}

/**
 * The apiserver learns of a new webhook configuration through a watch: send a
 * server-side dry-run create of an enrolled Service until the webhook logs a request for it.
 */
async function waitForApiserverToCall(namespace: string, logs: () => string) {
  const name = `kbg-probe-${Date.now().toString(36)}`;
  const manifest = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels: { 'bluegreen.io/app': name } },
    spec: { selector: { slot: 'blue' }, ports: [{ port: 80 }] },
  });
  await waitFor(
    async () => {
      await kubectl(['create', '--dry-run=server', '-f', '-'], { input: manifest });
      return logs().includes(`"name":"${name}"`);
    },
    { timeoutMs: 20_000, intervalMs: 250, message: 'the apiserver to call the webhook' },
  );
}
