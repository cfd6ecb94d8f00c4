// The local Kubernetes control plane used by the e2e tests and the demo:
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (fake
// nodes whose pods become Running/Ready, Job pods run to completion, and whose
// emulated kubelets serve resource metrics) and metrics-server (the metrics.k8s.io
// API the HPA controller reads, aggregated by the apiserver), built from Go modules
// by build.sh and run as plain local processes on loopback. kwok's stages and
// metrics are in local-cluster/kwok/. State lives in <repo>/.cluster:
//   pki/            CA, apiserver serving cert, admin client cert, service-account key,
//                   front-proxy CA and client, kwok's and metrics-server's serving certs
//   logs/<name>.log stdout+stderr of each process (kept after down, for post-mortems)
//   pids.json       the processes started (written as each one starts)
//   kubeconfig      cluster-admin, certificates embedded
//   env.json        paths for tests and tools (see ClusterEnv)
// etcd's data directory is on /dev/shm (tmpfs). See shared/notes/local-control-plane.md.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { generateCA, generateKey, issueCert } from './pki.ts';

/** The repository root (this file is local-cluster/control-plane.ts). */
export const DEFAULT_REPO_ROOT = fileURLToPath(new URL('../', import.meta.url)).replace(/\/$/, '');
export const PORTS = {
  apiserver: 16443,
  etcdClient: 23790,
  etcdPeer: 23800,
  /** kwok's server: the emulated kubelets' endpoint (every node's kubeletEndpoint port), resource metrics. */
  kwok: 16250,
  metricsServer: 16444,
} as const;
export const APISERVER_URL = `https://127.0.0.1:${PORTS.apiserver}`;
export const NODE_NAMES = ['kwok-node-0', 'kwok-node-1', 'kwok-node-2'] as const;
/** kwok's configuration: node and pod stages, the emulated kubelet metrics and where usage comes from. */
export const KWOK_CONFIG_FILES = ['node-stages.yaml', 'pod-stages.yaml', 'metrics.yaml'].map((f) => fileURLToPath(new URL(`./kwok/${f}`, import.meta.url)));
/**
 * What a running cluster must have been started with to be reused: bumped when a flag or a
 * started component changes; kwok's configuration is hashed in as well (see controlPlaneRevision).
 */
const REVISION = 'metrics-server+job-stages-1';
/** etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, metrics-server. */
const PROCESS_COUNT = 6;
/** Label a pod template sets for kwok to end its pod: "succeed" (exit 0) or "fail" (exit 1). */
export const KWOK_RESULT_LABEL = 'bluegreen.io/kwok-result';
/** Annotation: how long the pod's containers run before they exit (a Go duration, "3s"); none: at once. */
export const KWOK_DURATION_ANNOTATION = 'bluegreen.io/kwok-duration';
/** Pod annotations kwok reads the emulated usage from (a quantity: "500m", "64Mi"). */
export const KWOK_USAGE_CPU_ANNOTATION = 'kwok.x-k8s.io/usage-cpu';
export const KWOK_USAGE_MEMORY_ANNOTATION = 'kwok.x-k8s.io/usage-memory';

/** Contents of .cluster/env.json. */
export interface ClusterEnv {
  kubeconfig: string;
  /** The built kubectl (same version as the apiserver). */
  kubectl: string;
  helm: string;
  kubeBinDir: string;
  caCert: string;
  caKey: string;
  /**
   * The client certificate the apiserver presents to admission webhooks (its AdmissionConfiguration
   * names it for every webhook host), signed by caCert with CN WEBHOOK_CLIENT_NAME. A webhook started
   * with --client-ca-file caCert --client-names WEBHOOK_CLIENT_NAME accepts only the apiserver.
   */
  webhookClientCert: string;
  webhookClientKey: string;
  apiserver: string;
  /** HOME to run kubectl/helm with, so they leave the real home alone. */
  home: string;
  logsDir: string;
  nodes: string[];
  /** What the cluster was started with (flags, components, kwok's configuration); a different one is not reused. */
  revision?: string;
  /** metrics-server's URL (it serves metrics.k8s.io to the apiserver's aggregator). */
  metricsServer?: string;
}

export interface Binaries {
  etcd: string;
  kubeBinDir: string;
  kubectl: string;
  kwok: string;
  helm: string;
  metricsServer: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the child's stdin. */
  input?: string;
  /** Kill the child after this long (default 60 s); code is then 124. */
  timeoutMs?: number;
  /** Repository whose .cluster to use (default: this checkout). */
  repoRoot?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

export interface UpOptions {
  repoRoot?: string;
  log?: (msg: string) => void;
  /** Aborting stops the start: whatever was started is stopped and up() rejects. */
  signal?: AbortSignal;
}

export interface UpResult {
  env: ClusterEnv;
  /** True when a running, healthy cluster was found and reused. */
  reused: boolean;
  /** Milliseconds from the start of up() to ready (build check included). */
  totalMs: number;
  /** Milliseconds from the first process start to ready (0 when reused). */
  startMs: number;
}

export interface DownResult {
  /** Names of the processes that were running and were stopped. */
  stopped: string[];
  /** Names that needed SIGKILL. */
  killed: string[];
}

interface ProcRecord {
  name: string;
  pid: number;
  exe: string;
  log: string;
}

interface State {
  repoRoot: string;
  etcdDataDir: string;
  startedAt: string;
  processes: ProcRecord[];
}

const defaultLog = (msg: string) => process.stderr.write(`[cluster] ${msg}\n`);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Where build.sh caches binaries, Go caches and the HOME used for kubectl/helm. */
export function cacheDir(): string {
  return process.env.KBG_CACHE_DIR || path.join(os.homedir(), '.cache', 'kube-bluegreen');
}

export function clusterPaths(repoRoot: string = DEFAULT_REPO_ROOT) {
  const dir = path.join(repoRoot, '.cluster');
  const pki = path.join(dir, 'pki');
  return {
    dir,
    pki,
    logs: path.join(dir, 'logs'),
    pids: path.join(dir, 'pids.json'),
    env: path.join(dir, 'env.json'),
    kubeconfig: path.join(dir, 'kubeconfig'),
    lock: path.join(dir, 'up.lock'),
    caCert: path.join(pki, 'ca.crt'),
    caKey: path.join(pki, 'ca.key'),
    webhookClientCert: path.join(pki, 'webhook-client.crt'),
    webhookClientKey: path.join(pki, 'webhook-client.key'),
    admissionConfig: path.join(pki, 'admission-config.yaml'),
    metricsServerManifest: path.join(dir, 'metrics-server.yaml'),
    home: path.join(cacheDir(), 'home'),
    // One etcd directory per checkout and user, on tmpfs when there is one.
    etcdDataDir: path.join(
      fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(),
      `kube-bluegreen-etcd-${os.userInfo().uid}-${createHash('sha256').update(repoRoot).digest('hex').slice(0, 10)}`,
    ),
  };
}
type Paths = ReturnType<typeof clusterPaths>;

function childEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const noProxy = ['127.0.0.1', 'localhost', process.env.NO_PROXY ?? process.env.no_proxy ?? ''].filter(Boolean).join(',');
  return { ...process.env, HOME: home, NO_PROXY: noProxy, no_proxy: noProxy, ...extra };
}

// ---------------------------------------------------------------------------
// Binaries

/** Runs build.sh (a cache hit takes about a second), streaming its log to stderr. */
export async function ensureBinaries(opts: { signal?: AbortSignal } = {}): Promise<Binaries> {
  const script = fileURLToPath(new URL('./build.sh', import.meta.url));
  const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'], signal: opts.signal });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
  });
  if (code !== 0) throw new Error(`local-cluster/build.sh failed (exit ${code}); its log is above`);
  const vars = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) vars.set(m[1]!, m[2]!);
  }
  const need = (k: string) => {
    const v = vars.get(k);
    if (!v) throw new Error(`build.sh did not print ${k}= (stdout was: ${JSON.stringify(out)})`);
    return v;
  };
  const bins: Binaries = {
    etcd: need('ETCD_BIN'),
    kubeBinDir: need('KUBE_BIN_DIR'),
    kubectl: path.join(need('KUBE_BIN_DIR'), 'kubectl'),
    kwok: need('KWOK_BIN'),
    helm: need('HELM_BIN'),
    metricsServer: need('METRICS_SERVER_BIN'),
  };
  for (const f of [
    bins.etcd,
    bins.kubectl,
    bins.kwok,
    bins.helm,
    bins.metricsServer,
    path.join(bins.kubeBinDir, 'kube-apiserver'),
    path.join(bins.kubeBinDir, 'kube-controller-manager'),
    path.join(bins.kubeBinDir, 'kube-scheduler'),
  ]) {
    fs.accessSync(f, fs.constants.X_OK);
  }
  return bins;
}

// ---------------------------------------------------------------------------
// Running commands

function run(exe: string, args: readonly string[], env: NodeJS.ProcessEnv, opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) resolve({ code: 124, stdout, stderr: `${stderr}\n(timed out after ${opts.timeoutMs ?? 60_000} ms)` });
      else resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => {}); // the child may exit before reading its input
    child.stdin.end(opts.input ?? '');
  });
}

/** Reads .cluster/env.json; throws a clear error when the cluster is not up. */
export function readClusterEnv(repoRoot: string = DEFAULT_REPO_ROOT): ClusterEnv {
  const p = clusterPaths(repoRoot);
  let text: string;
  try {
    text = fs.readFileSync(p.env, 'utf8');
  } catch {
    throw new Error(`no local cluster: ${p.env} is missing (run \`npm run cluster:up\`)`);
  }
  return JSON.parse(text) as ClusterEnv;
}

/** Runs the built kubectl against .cluster/kubeconfig (HOME=<cache>/home). Never throws on a non-zero exit. */
export function kubectl(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const env = readClusterEnv(opts.repoRoot);
  return run(env.kubectl, ['--kubeconfig', env.kubeconfig, ...args], childEnv(env.home, { KUBECONFIG: env.kubeconfig, ...opts.env }), opts);
}

/** Runs the built helm against .cluster/kubeconfig (HOME=<cache>/home). Never throws on a non-zero exit. */
export function helm(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const env = readClusterEnv(opts.repoRoot);
  return run(
    env.helm,
    ['--kubeconfig', env.kubeconfig, ...args],
    childEnv(env.home, {
      KUBECONFIG: env.kubeconfig,
      HELM_CACHE_HOME: path.join(env.home, '.cache', 'helm'),
      HELM_CONFIG_HOME: path.join(env.home, '.config', 'helm'),
      HELM_DATA_HOME: path.join(env.home, '.local', 'share', 'helm'),
      ...opts.env,
    }),
    opts,
  );
}

// ---------------------------------------------------------------------------
// Processes

function readState(p: Paths): State | undefined {
  try {
    return JSON.parse(fs.readFileSync(p.pids, 'utf8')) as State;
  } catch {
    return undefined;
  }
}

function writeState(p: Paths, state: State): void {
  const tmp = `${p.pids}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(tmp, p.pids);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'; // a zombie is dead
  } catch {
    return !fs.existsSync('/proc/self'); // no /proc: trust kill(0)
  }
}

/** Alive and still the program we started (a recycled PID is not ours). */
function isOurs(rec: ProcRecord): boolean {
  if (!pidAlive(rec.pid)) return false;
  try {
    return fs.readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0')[0] === rec.exe;
  } catch {
    return fs.existsSync('/proc/self') ? false : true;
  }
}

interface Started {
  rec: ProcRecord;
  exit?: string;
}

function startProcess(name: string, exe: string, args: string[], p: Paths, env: NodeJS.ProcessEnv): Started {
  const log = path.join(p.logs, `${name}.log`);
  const fd = fs.openSync(log, 'w');
  let child;
  try {
    // detached: setsid, so the process leads its own group and outlives this one.
    child = spawn(exe, args, { detached: true, stdio: ['ignore', fd, fd], env, cwd: p.dir });
  } finally {
    fs.closeSync(fd);
  }
  if (child.pid === undefined) throw new Error(`could not start ${name} (${exe})`);
  const started: Started = { rec: { name, pid: child.pid, exe, log } };
  child.on('error', (e) => (started.exit ??= `failed: ${e.message}`));
  child.on('exit', (code, signal) => (started.exit ??= signal ? `killed by ${signal}` : `exited with code ${code}`));
  child.unref();
  return started;
}

function tail(file: string, lines = 25): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Stops the recorded processes, clients first: kwok, scheduler and controller-manager
 * together, then the apiserver, then etcd. Stopping all at once makes the apiserver
 * (which deletes its lease on the way out) and etcd (which drains the apiserver's
 * watch streams) wait for each other until SIGKILL. Each tier gets SIGTERM to its
 * process groups and graceMs, then SIGKILL.
 */
async function stopProcesses(recs: readonly ProcRecord[], log: (m: string) => void, graceMs = 10_000): Promise<DownResult> {
  const tierOf = (name: string) => (name === 'etcd' ? 2 : name === 'kube-apiserver' ? 1 : 0);
  const result: DownResult = { stopped: [], killed: [] };
  for (const tier of [0, 1, 2]) {
    const r = await stopTier(recs.filter((rec) => tierOf(rec.name) === tier).reverse(), log, graceMs);
    result.stopped.push(...r.stopped);
    result.killed.push(...r.killed);
  }
  return result;
}

async function stopTier(recs: readonly ProcRecord[], log: (m: string) => void, graceMs: number): Promise<DownResult> {
  const live = recs.filter(isOurs);
  const signal = (r: ProcRecord, sig: NodeJS.Signals) => {
    try {
      process.kill(-r.pid, sig); // the group: pid == pgid (started with setsid)
    } catch {
      try {
        process.kill(r.pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  for (const r of live) signal(r, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (live.some(isOurs) && Date.now() < deadline) await sleep(50);
  const killed = live.filter(isOurs);
  for (const r of killed) {
    log(`${r.name} (pid ${r.pid}) still running ${secs(graceMs)} after SIGTERM: SIGKILL`);
    signal(r, 'SIGKILL');
  }
  const killDeadline = Date.now() + 5_000;
  while (killed.some(isOurs) && Date.now() < killDeadline) await sleep(50);
  const survivors = live.filter(isOurs);
  if (survivors.length) throw new Error(`could not stop ${survivors.map((r) => `${r.name} (pid ${r.pid})`).join(', ')}`);
  return { stopped: live.map((r) => r.name), killed: killed.map((r) => r.name) };
}

// ---------------------------------------------------------------------------
// Probes

interface Tls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

function loadAdminTls(p: Paths): Tls {
  return {
    ca: fs.readFileSync(p.caCert),
    cert: fs.readFileSync(path.join(p.pki, 'admin.crt')),
    key: fs.readFileSync(path.join(p.pki, 'admin.key')),
  };
}

function apiGet(urlPath: string, tls: Tls, timeoutMs = 3_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${APISERVER_URL}${urlPath}`, { ...tls, agent: false, timeout: timeoutMs, headers: { accept: 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function httpGet(url: string, timeoutMs = 2_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/** Polls check() until it returns true; fails early if a started process has exited. */
async function waitUntil(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  started: readonly Started[] = [],
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    signal?.throwIfAborted();
    const dead = started.find((s) => s.exit !== undefined || !pidAlive(s.rec.pid));
    if (dead) {
      throw new Error(`${dead.rec.name} ${dead.exit ?? 'exited'} while waiting for ${what}; last lines of ${dead.rec.log}:\n${tail(dead.rec.log)}`);
    }
    try {
      if (await check()) return;
      last = '';
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${secs(timeoutMs)} waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
    await sleep(100);
  }
}

async function apiserverReady(tls: Tls): Promise<boolean> {
  const r = await apiGet('/readyz', tls);
  return r.status === 200 && r.body.trim() === 'ok';
}

interface NodeList {
  items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[];
}

async function nodesReady(tls: Tls): Promise<boolean> {
  const r = await apiGet('/api/v1/nodes', tls);
  if (r.status !== 200) return false;
  const ready = new Set(
    (JSON.parse(r.body) as NodeList).items
      .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
      .map((n) => n.metadata.name),
  );
  return NODE_NAMES.every((n) => ready.has(n));
}

async function metricsApiAvailable(tls: Tls): Promise<boolean> {
  const r = await apiGet('/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io', tls);
  if (r.status !== 200) return false;
  const conds = (JSON.parse(r.body) as { status?: { conditions?: { type: string; status: string }[] } }).status?.conditions;
  return conds?.some((c) => c.type === 'Available' && c.status === 'True') ?? false;
}

async function defaultServiceAccount(tls: Tls): Promise<boolean> {
  return (await apiGet('/api/v1/namespaces/default/serviceaccounts/default', tls)).status === 200;
}

async function waitClusterReady(tls: Tls, timeoutMs: number, started: readonly Started[] = [], signal?: AbortSignal): Promise<void> {
  await waitUntil('apiserver /readyz', timeoutMs, () => apiserverReady(tls), started, signal);
  await waitUntil(`nodes ${NODE_NAMES.join(', ')} Ready`, timeoutMs, () => nodesReady(tls), started, signal);
  await waitUntil('ServiceAccount default/default', timeoutMs, () => defaultServiceAccount(tls), started, signal);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

async function busyPorts(): Promise<number[]> {
  const ports = Object.values(PORTS);
  const free = await Promise.all(ports.map(portFree));
  return ports.filter((_, i) => !free[i]);
}

// ---------------------------------------------------------------------------
// Lock: one up() at a time per checkout

async function acquireLock(p: Paths, log: (m: string) => void, signal?: AbortSignal, timeoutMs = 30 * 60_000): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  let said = false;
  for (;;) {
    signal?.throwIfAborted();
    try {
      fs.writeFileSync(p.lock, String(process.pid), { flag: 'wx' });
      return () => {
        try {
          if (fs.readFileSync(p.lock, 'utf8') === String(process.pid)) fs.rmSync(p.lock);
        } catch {
          /* gone */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner: number;
    try {
      owner = Number.parseInt(fs.readFileSync(p.lock, 'utf8'), 10);
    } catch {
      continue; // removed meanwhile
    }
    if (!owner || !pidAlive(owner)) {
      fs.rmSync(p.lock, { force: true });
      continue;
    }
    if (owner === process.pid) throw new Error('up() is already running in this process');
    if (!said) log(`another cluster:up (pid ${owner}) is running; waiting for it`);
    said = true;
    if (Date.now() > deadline) throw new Error(`another cluster:up (pid ${owner}) still holds ${p.lock}`);
    await sleep(500);
  }
}

// ---------------------------------------------------------------------------
// up / down

function kubeconfigYaml(ca: string, cert: string, key: string): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- name: kube-bluegreen
  cluster:
    server: ${APISERVER_URL}
    certificate-authority-data: ${b64(ca)}
users:
- name: admin
  user:
    client-certificate-data: ${b64(cert)}
    client-key-data: ${b64(key)}
contexts:
- name: kube-bluegreen
  context:
    cluster: kube-bluegreen
    user: admin
    namespace: default
current-context: kube-bluegreen
`;
}

/** CN of the client certificate the apiserver presents to admission webhooks. */
export const WEBHOOK_CLIENT_NAME = 'kube-apiserver-webhook-client';

/**
 * The kubeconfig the apiserver reads to authenticate itself to webhooks: its `users` are matched
 * by webhook host (here '*': every webhook, the test webhooks on random loopback ports included).
 * See "Authenticate apiservers" in the Kubernetes admission webhook docs.
 */
function webhookClientKubeconfig(cert: string, key: string): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return `apiVersion: v1
kind: Config
users:
- name: '*'
  user:
    client-certificate-data: ${b64(cert)}
    client-key-data: ${b64(key)}
`;
}

function admissionConfiguration(kubeconfig: string): string {
  const plugin = (name: string) => `- name: ${name}
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: ${kubeconfig}
`;
  return `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
${plugin('ValidatingAdmissionWebhook')}${plugin('MutatingAdmissionWebhook')}`;
}

/** CN of the front proxy's client certificate (--requestheader-allowed-names). */
export const FRONT_PROXY_CLIENT_NAME = 'front-proxy-client';

/**
 * metrics.k8s.io, served by metrics-server on loopback: an APIService whose Service is an
 * ExternalName for 127.0.0.1 (there is no kube-proxy here to route a ClusterIP, and Endpoints may
 * not name loopback addresses; kwokctl registers its metrics-server the same way). The aggregator
 * verifies metrics-server's certificate against caBundle, as metrics-server.kube-system.svc.
 */
function metricsServerManifest(caPem: string): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: metrics-server
  namespace: kube-system
  labels: {k8s-app: metrics-server}
spec:
  type: ExternalName
  externalName: 127.0.0.1
  ports:
  - {name: https, port: ${PORTS.metricsServer}, protocol: TCP}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.metrics.k8s.io
  labels: {k8s-app: metrics-server}
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  service: {name: metrics-server, namespace: kube-system, port: ${PORTS.metricsServer}}
  caBundle: ${Buffer.from(caPem).toString('base64')}
`;
}

/** REVISION plus a hash of kwok's configuration: what env.json records and a reuse must match. */
export function controlPlaneRevision(): string {
  const h = createHash('sha256');
  for (const f of KWOK_CONFIG_FILES) h.update(fs.readFileSync(f));
  return `${REVISION}/kwok-${h.digest('hex').slice(0, 12)}`;
}

function nodeManifests(): string {
  return NODE_NAMES.map(
    (name) => `apiVersion: v1
kind: Node
metadata:
  name: ${name}
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
    # where metrics-server finds this node's resource metrics on kwok's server (local-cluster/kwok/metrics.yaml)
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/${name}/metrics/resource
  labels:
    kubernetes.io/hostname: ${name}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
spec: {}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
`,
  ).join('---\n');
}

async function writePki(p: Paths): Promise<void> {
  fs.rmSync(p.pki, { recursive: true, force: true });
  fs.mkdirSync(p.pki, { recursive: true, mode: 0o700 });
  const ca = await generateCA('kube-bluegreen-local-ca');
  const [apiserver, admin, saKey] = await Promise.all([
    issueCert(ca, {
      commonName: 'kube-apiserver',
      usage: 'server',
      ipAddresses: ['127.0.0.1', '10.96.0.1'],
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
    }),
    issueCert(ca, { commonName: 'kubernetes-admin', organization: 'system:masters', usage: 'client' }),
    generateKey(),
  ]);
  const webhookClient = await issueCert(ca, { commonName: WEBHOOK_CLIENT_NAME, usage: 'client' });
  // The aggregation layer: the apiserver proxies metrics.k8s.io to metrics-server with a client
  // certificate from a CA of its own (--requestheader-client-ca-file), so that no other client
  // certificate of the cluster CA can pass for the front proxy.
  const frontProxyCA = await generateCA('kube-bluegreen-front-proxy-ca');
  const [frontProxyClient, kwokServing, metricsServing] = await Promise.all([
    issueCert(frontProxyCA, { commonName: FRONT_PROXY_CLIENT_NAME, usage: 'client' }),
    // kwok's server is the nodes' kubelet endpoint; metrics-server verifies it with the cluster CA.
    issueCert(ca, { commonName: 'kwok', usage: 'server', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] }),
    // The aggregator dials metrics-server as <service>.<namespace>.svc.
    issueCert(ca, {
      commonName: 'metrics-server',
      usage: 'server',
      ipAddresses: ['127.0.0.1'],
      dnsNames: ['metrics-server.kube-system.svc', 'localhost'],
    }),
  ]);
  const put = (name: string, data: string, mode = 0o644) => fs.writeFileSync(path.join(p.pki, name), data, { mode });
  put('ca.crt', ca.certPem);
  put('ca.key', ca.keyPem, 0o600);
  put('apiserver.crt', apiserver.certPem);
  put('apiserver.key', apiserver.keyPem, 0o600);
  put('admin.crt', admin.certPem);
  put('admin.key', admin.keyPem, 0o600);
  put('sa.key', saKey, 0o600);
  put('webhook-client.crt', webhookClient.certPem);
  put('webhook-client.key', webhookClient.keyPem, 0o600);
  put('webhook-client.kubeconfig', webhookClientKubeconfig(webhookClient.certPem, webhookClient.keyPem), 0o600);
  put('admission-config.yaml', admissionConfiguration(path.join(p.pki, 'webhook-client.kubeconfig')));
  put('front-proxy-ca.crt', frontProxyCA.certPem);
  put('front-proxy-client.crt', frontProxyClient.certPem);
  put('front-proxy-client.key', frontProxyClient.keyPem, 0o600);
  put('kwok.crt', kwokServing.certPem);
  put('kwok.key', kwokServing.keyPem, 0o600);
  put('metrics-server.crt', metricsServing.certPem);
  put('metrics-server.key', metricsServing.keyPem, 0o600);
  fs.writeFileSync(p.metricsServerManifest, metricsServerManifest(ca.certPem));
  fs.writeFileSync(p.kubeconfig, kubeconfigYaml(ca.certPem, admin.certPem, admin.keyPem), { mode: 0o600 });
}

function removeState(p: Paths, etcdDataDir: string): void {
  fs.rmSync(etcdDataDir, { recursive: true, force: true });
  for (const f of [p.env, p.kubeconfig, p.pids, `${p.pids}.tmp`, p.metricsServerManifest]) fs.rmSync(f, { force: true });
  fs.rmSync(p.pki, { recursive: true, force: true });
}

async function healthyExisting(p: Paths, state: State, bins: Binaries): Promise<string | undefined> {
  const dead = state.processes.filter((r) => !isOurs(r));
  if (dead.length) return `not running: ${dead.map((r) => r.name).join(', ')}`;
  if (state.processes.length !== PROCESS_COUNT) return 'incomplete start';
  let env: ClusterEnv;
  try {
    env = readClusterEnv(state.repoRoot);
  } catch {
    return 'no env.json';
  }
  if (env.kubeBinDir !== bins.kubeBinDir) return `it runs ${env.kubeBinDir}, the pinned build is ${bins.kubeBinDir}`;
  if (!env.webhookClientCert || !fs.existsSync(env.webhookClientCert)) return 'started without the webhook client certificate';
  const want = controlPlaneRevision();
  if (env.revision !== want) return `started as ${env.revision ?? 'an older revision'}, this checkout wants ${want}`;
  try {
    await waitClusterReady(loadAdminTls(p), 15_000);
    await waitUntil('APIService v1beta1.metrics.k8s.io Available', 15_000, () => metricsApiAvailable(loadAdminTls(p)));
  } catch (e) {
    return `unhealthy: ${(e as Error).message}`;
  }
  return undefined;
}

/**
 * Brings the cluster up, or reuses a running healthy one. Builds the binaries if
 * needed. On failure everything started is stopped before the error is thrown.
 */
export async function up(opts: UpOptions = {}): Promise<UpResult> {
  const repoRoot = opts.repoRoot ?? DEFAULT_REPO_ROOT;
  const log = opts.log ?? defaultLog;
  const p = clusterPaths(repoRoot);
  const t0 = Date.now();
  fs.mkdirSync(p.logs, { recursive: true });

  const bins = await ensureBinaries({ signal: opts.signal });
  log(`binaries ready in ${secs(Date.now() - t0)}`);

  const release = await acquireLock(p, log, opts.signal);
  try {
    const existing = readState(p);
    if (existing) {
      const why = await healthyExisting(p, existing, bins);
      if (why === undefined) {
        const env = readClusterEnv(repoRoot);
        log(`reusing the running cluster (pids ${existing.processes.map((r) => r.pid).join(', ')}): ${env.apiserver}, kubeconfig ${env.kubeconfig}`);
        return { env, reused: true, totalMs: Date.now() - t0, startMs: 0 };
      }
      log(`found a previous cluster in ${p.pids} (${why}): stopping and cleaning it`);
      await stopProcesses(existing.processes, log);
      removeState(p, existing.etcdDataDir);
    }
    const busy = await busyPorts();
    if (busy.length) {
      throw new Error(
        `port(s) ${busy.join(', ')} on 127.0.0.1 are in use by a process this checkout did not record; ` +
          'is a cluster from another checkout running? Stop it with `npm run cluster:down` there.',
      );
    }
    return await startFresh(p, repoRoot, bins, log, t0, opts.signal);
  } finally {
    release();
  }
}

async function startFresh(p: Paths, repoRoot: string, bins: Binaries, log: (m: string) => void, t0: number, signal?: AbortSignal): Promise<UpResult> {
  const tStart = Date.now();
  let t = tStart;
  const phase = (what: string) => {
    const now = Date.now();
    log(`${what} (${secs(now - t)})`);
    t = now;
  };
  const state: State = { repoRoot, etcdDataDir: p.etcdDataDir, startedAt: new Date().toISOString(), processes: [] };
  const started: Started[] = [];
  const env = childEnv(p.home);
  const kube = (c: string) => path.join(bins.kubeBinDir, c);
  const pki = (f: string) => path.join(p.pki, f);
  const start = (name: string, exe: string, args: string[]) => {
    signal?.throwIfAborted();
    const s = startProcess(name, exe, args, p, env);
    started.push(s);
    state.processes.push(s.rec);
    writeState(p, state);
    return s;
  };

  try {
    fs.mkdirSync(p.home, { recursive: true });
    await writePki(p);
    phase('certificates and kubeconfig written');

    fs.rmSync(p.etcdDataDir, { recursive: true, force: true });
    fs.mkdirSync(p.etcdDataDir, { recursive: true, mode: 0o700 });
    fs.chmodSync(p.etcdDataDir, 0o700);
    const etcdClient = `http://127.0.0.1:${PORTS.etcdClient}`;
    const etcdPeer = `http://127.0.0.1:${PORTS.etcdPeer}`;
    start('etcd', bins.etcd, [
      '--name=local',
      `--data-dir=${p.etcdDataDir}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
      `--listen-client-urls=${etcdClient}`,
      `--advertise-client-urls=${etcdClient}`,
      `--listen-peer-urls=${etcdPeer}`,
      `--initial-advertise-peer-urls=${etcdPeer}`,
      `--initial-cluster=local=${etcdPeer}`,
    ]);
    await waitUntil(
      'etcd /health',
      30_000,
      async () => {
        const r = await httpGet(`${etcdClient}/health`);
        return r.status === 200 && (JSON.parse(r.body) as { health?: string }).health === 'true';
      },
      started,
      signal,
    );
    phase('etcd healthy');

    start('kube-apiserver', kube('kube-apiserver'), [
      `--etcd-servers=${etcdClient}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${PORTS.apiserver}`,
      '--advertise-address=127.0.0.1',
      '--endpoint-reconciler-type=none',
      `--tls-cert-file=${pki('apiserver.crt')}`,
      `--tls-private-key-file=${pki('apiserver.key')}`,
      `--client-ca-file=${pki('ca.crt')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki('sa.key')}`,
      `--service-account-signing-key-file=${pki('sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/12',
      '--authorization-mode=Node,RBAC',
      '--allow-privileged=true',
      `--admission-control-config-file=${p.admissionConfig}`,
      // The aggregation layer (metrics.k8s.io from metrics-server): the front proxy's client
      // certificate, and the headers that carry the user to the extension apiserver.
      `--requestheader-client-ca-file=${pki('front-proxy-ca.crt')}`,
      `--requestheader-allowed-names=${FRONT_PROXY_CLIENT_NAME}`,
      '--requestheader-username-headers=X-Remote-User',
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      `--proxy-client-cert-file=${pki('front-proxy-client.crt')}`,
      `--proxy-client-key-file=${pki('front-proxy-client.key')}`,
    ]);
    const tls = loadAdminTls(p);
    await waitUntil('kube-apiserver /readyz', 90_000, () => apiserverReady(tls), started, signal);
    phase('kube-apiserver ready');

    start('kube-controller-manager', kube('kube-controller-manager'), [
      `--kubeconfig=${p.kubeconfig}`,
      '--leader-elect=false',
      '--secure-port=0',
      '--kube-api-qps=1000',
      '--kube-api-burst=1000',
      // The HPA controller (on by default, like the job controller) every 2 s instead of 15 s, so
      // e2e tests see it act in seconds; it reads metrics.k8s.io like in any cluster.
      '--horizontal-pod-autoscaler-sync-period=2s',
    ]);
    start('kube-scheduler', kube('kube-scheduler'), [`--kubeconfig=${p.kubeconfig}`, '--leader-elect=false', '--secure-port=0']);
    start('kwok', bins.kwok, [
      `--kubeconfig=${p.kubeconfig}`,
      ...KWOK_CONFIG_FILES.map((f) => `--config=${f}`),
      '--manage-all-nodes=true',
      '--node-lease-duration-seconds=40',
      // The nodes' InternalIP, which metrics-server dials: loopback, where kwok's server listens.
      // (Pod IPs come from --cidr and are never dialled.)
      '--node-ip=127.0.0.1',
      // Published as each node's kubeletEndpoint port; kwok's server (the emulated kubelets'
      // /metrics/nodes/<node>/metrics/resource) listens there, on loopback only, with TLS.
      `--node-port=${PORTS.kwok}`,
      `--server-address=127.0.0.1:${PORTS.kwok}`,
      `--tls-cert-file=${pki('kwok.crt')}`,
      `--tls-private-key-file=${pki('kwok.key')}`,
      '--cidr=10.244.0.0/16',
    ]);
    const apply = await run(bins.kubectl, ['--kubeconfig', p.kubeconfig, 'apply', '-f', '-'], childEnv(p.home), {
      input: nodeManifests(),
    });
    signal?.throwIfAborted();
    if (apply.code !== 0) throw new Error(`registering the fake nodes failed: ${apply.stderr.trim()}`);
    phase('controller-manager, scheduler, kwok started; nodes registered');

    start('metrics-server', bins.metricsServer, [
      '--bind-address=127.0.0.1',
      `--secure-port=${PORTS.metricsServer}`,
      `--tls-cert-file=${pki('metrics-server.crt')}`,
      `--tls-private-key-file=${pki('metrics-server.key')}`,
      `--kubeconfig=${p.kubeconfig}`,
      // It trusts the front proxy's headers (the CA and names come from the apiserver's
      // extension-apiserver-authentication ConfigMap) and asks the apiserver who may read metrics.
      `--authentication-kubeconfig=${p.kubeconfig}`,
      `--authorization-kubeconfig=${p.kubeconfig}`,
      // Scrapes each node at InternalIP:kubeletEndpoint port and the node's resource-metrics-path.
      '--kubelet-preferred-address-types=InternalIP',
      '--kubelet-use-node-status-port',
      `--kubelet-certificate-authority=${pki('ca.crt')}`,
      '--kubelet-request-timeout=5s',
      '--metric-resolution=10s', // its minimum
    ]);
    const applyMetrics = await run(bins.kubectl, ['--kubeconfig', p.kubeconfig, 'apply', '-f', p.metricsServerManifest], childEnv(p.home), {});
    signal?.throwIfAborted();
    if (applyMetrics.code !== 0) throw new Error(`registering metrics.k8s.io failed: ${applyMetrics.stderr.trim()}`);

    await waitClusterReady(tls, 60_000, started, signal);
    phase(`nodes Ready, ServiceAccount default/default exists`);
    await waitUntil('APIService v1beta1.metrics.k8s.io Available', 60_000, () => metricsApiAvailable(tls), started, signal);
    phase('metrics.k8s.io available (metrics-server)');

    const clusterEnv: ClusterEnv = {
      kubeconfig: p.kubeconfig,
      kubectl: bins.kubectl,
      helm: bins.helm,
      kubeBinDir: bins.kubeBinDir,
      caCert: p.caCert,
      caKey: p.caKey,
      webhookClientCert: p.webhookClientCert,
      webhookClientKey: p.webhookClientKey,
      apiserver: APISERVER_URL,
      home: p.home,
      logsDir: p.logs,
      nodes: [...NODE_NAMES],
      revision: controlPlaneRevision(),
      metricsServer: `https://127.0.0.1:${PORTS.metricsServer}`,
    };
    fs.writeFileSync(p.env, `${JSON.stringify(clusterEnv, null, 2)}\n`);
    const now = Date.now();
    log(`cluster ready in ${secs(now - tStart)} from first start (${secs(now - t0)} including the build check); ` + `kubeconfig ${p.kubeconfig}`);
    return { env: clusterEnv, reused: false, totalMs: now - t0, startMs: now - tStart };
  } catch (e) {
    log(`start failed: ${(e as Error).message}`);
    log(`stopping what was started; logs stay in ${p.logs}`);
    try {
      await stopProcesses(state.processes, log);
    } finally {
      removeState(p, p.etcdDataDir);
    }
    throw e;
  }
}

/** Stops every recorded process (SIGTERM to its group, SIGKILL after 10 s) and removes the cluster's data and state. */
export async function down(opts: UpOptions = {}): Promise<DownResult> {
  const repoRoot = opts.repoRoot ?? DEFAULT_REPO_ROOT;
  const log = opts.log ?? defaultLog;
  const p = clusterPaths(repoRoot);
  const state = readState(p);
  const t0 = Date.now();
  let result: DownResult = { stopped: [], killed: [] };
  if (state) result = await stopProcesses(state.processes, log);
  removeState(p, state?.etcdDataDir ?? p.etcdDataDir);
  if (result.stopped.length) log(`stopped ${result.stopped.join(', ')} in ${secs(Date.now() - t0)}; state removed`);
  else log(state ? 'no recorded process was running; state removed' : 'no cluster recorded in this checkout');
  const busy = await busyPorts();
  if (busy.length) log(`warning: port(s) ${busy.join(', ')} still in use by a process this checkout did not start`);
  return result;
}
