// Credentials for each request from a resolved kubeconfig (src/kube/kubeconfig.ts):
// bearer tokens (a tokenFile re-read at most once a minute, like client-go), basic auth,
// impersonation headers, and exec credential plugins (client.authentication.k8s.io).
//
// An exec plugin runs once per process: concurrent requests share the one run in flight,
// and its answer is kept until its expirationTimestamp (or until the server answers 401,
// when the client calls invalidate()), then the plugin runs once more.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ExecConfig, Impersonation, ResolvedKubeconfig } from './kubeconfig.ts';

export interface RequestCredentials {
  /** An array value is sent as repeated header lines (one Impersonate-Group per group). */
  headers: Record<string, string | string[]>;
  /** Client certificate and key, from the kubeconfig or an exec plugin (PEM). */
  cert?: Buffer;
  key?: Buffer;
}

export interface ExecResult {
  token?: string;
  cert?: Buffer;
  key?: Buffer;
  /** ms since the epoch; undefined: valid for the life of the process. */
  expiresAt?: number;
}

export type ExecRunner = (exec: ExecConfig, info: string) => Promise<string>;

const TOKEN_FILE_TTL_MS = 60_000;

export class Credentials {
  private readonly cfg: ResolvedKubeconfig;
  private readonly now: () => number;
  private readonly runExec: ExecRunner;
  private execRun: Promise<ExecResult> | undefined;
  private tokenFile: { token: string; readAt: number } | undefined;
  /** How many times the exec plugin was started (tests). */
  execRuns = 0;

  constructor(cfg: ResolvedKubeconfig, opts: { now?: () => number; runExec?: ExecRunner } = {}) {
    this.cfg = cfg;
    this.now = opts.now ?? Date.now;
    this.runExec = opts.runExec ?? spawnExec;
  }

  /** Forget the exec plugin's answer (after a 401), so the next request runs it again. */
  invalidate(): void {
    this.execRun = undefined;
    this.tokenFile = undefined;
  }

  get usesExec(): boolean {
    return this.cfg.auth.type === 'exec';
  }

  async forRequest(): Promise<RequestCredentials> {
    const headers: Record<string, string | string[]> = impersonationHeaders(this.cfg.impersonate);
    const out: RequestCredentials = { headers, ...(this.cfg.tls.cert ? { cert: this.cfg.tls.cert, key: this.cfg.tls.key } : {}) };
    const auth = this.cfg.auth;
    switch (auth.type) {
      case 'none':
        break;
      case 'token':
        headers.authorization = `Bearer ${auth.token}`;
        break;
      case 'tokenFile': {
        const t = this.readTokenFile(auth.path) ?? auth.token;
        if (t) headers.authorization = `Bearer ${t}`;
        break;
      }
      case 'basic':
        headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
        break;
      case 'exec': {
        const r = await this.exec(auth.exec);
        if (r.token) headers.authorization = `Bearer ${r.token}`;
        if (r.cert && r.key) {
          out.cert = r.cert;
          out.key = r.key;
        }
        break;
      }
    }
    return out;
  }

  private readTokenFile(path: string): string | undefined {
    const now = this.now();
    if (this.tokenFile && now - this.tokenFile.readAt < TOKEN_FILE_TTL_MS) return this.tokenFile.token;
    try {
      const token = readFileSync(path, 'utf8').trim();
      this.tokenFile = { token, readAt: now };
      return token;
    } catch (e) {
      // client-go keeps the last good token (or the static one) when the file cannot be read.
      if (this.tokenFile) return this.tokenFile.token;
      if (this.cfg.auth.type === 'tokenFile' && this.cfg.auth.token) return undefined;
      throw new Error(`cannot read the token file ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  private exec(exec: ExecConfig): Promise<ExecResult> {
    const cached = this.execRun;
    if (cached) {
      return cached.then((r) => {
        if (r.expiresAt !== undefined && r.expiresAt <= this.now() && this.execRun === cached) this.execRun = undefined;
        return this.execRun === undefined ? this.exec(exec) : r;
      });
    }
    this.execRuns++;
    const info = JSON.stringify({
      apiVersion: exec.apiVersion,
      kind: 'ExecCredential',
      spec: {
        interactive: exec.interactiveMode !== 'Never' && process.stdin.isTTY === true,
        ...(exec.provideClusterInfo ? { cluster: this.cfg.clusterInfo } : {}),
      },
    });
    const run = this.runExec(exec, info).then((stdout) => parseExecCredential(stdout, exec.apiVersion, exec.command));
    this.execRun = run;
    run.catch(() => {
      if (this.execRun === run) this.execRun = undefined;
    });
    return run;
  }
}

export function impersonationHeaders(imp: Impersonation | undefined): Record<string, string | string[]> {
  const h: Record<string, string | string[]> = {};
  if (!imp) return h;
  if (imp.user) h['impersonate-user'] = imp.user;
  if (imp.uid) h['impersonate-uid'] = imp.uid;
  // The apiserver takes one group (one extra value) per header line, never a comma-joined list.
  if (imp.groups.length) h['impersonate-group'] = [...imp.groups];
  for (const [k, vs] of Object.entries(imp.extra)) if (vs.length) h[`impersonate-extra-${encodeURIComponent(k)}`] = [...vs];
  return h;
}

/** Parses an exec plugin's stdout (an ExecCredential), as client-go does. */
export function parseExecCredential(stdout: string, apiVersion: string, command: string): ExecResult {
  let doc: { apiVersion?: string; kind?: string; status?: Record<string, unknown> };
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw new Error(`exec plugin ${command}: its output is not an ExecCredential (JSON): ${stdout.slice(0, 200)}`);
  }
  if (doc.kind !== 'ExecCredential') throw new Error(`exec plugin ${command}: output kind ${JSON.stringify(doc.kind)}, expected ExecCredential`);
  if (doc.apiVersion !== apiVersion)
    throw new Error(`exec plugin ${command} is configured to use API version ${apiVersion}, plugin returned version ${doc.apiVersion}`);
  const st = doc.status ?? {};
  const token = typeof st.token === 'string' && st.token ? st.token : undefined;
  const certPem = typeof st.clientCertificateData === 'string' ? st.clientCertificateData : '';
  const keyPem = typeof st.clientKeyData === 'string' ? st.clientKeyData : '';
  if (!!certPem !== !!keyPem) throw new Error(`exec plugin ${command}: clientCertificateData and clientKeyData must both be present`);
  if (!token && !certPem) throw new Error(`exec plugin ${command} did not return a status.token or status.clientCertificateData`);
  let expiresAt: number | undefined;
  if (typeof st.expirationTimestamp === 'string') {
    const t = Date.parse(st.expirationTimestamp);
    if (Number.isNaN(t)) throw new Error(`exec plugin ${command}: expirationTimestamp ${st.expirationTimestamp} is not a time`);
    expiresAt = t;
  }
  return {
    ...(token ? { token } : {}),
    ...(certPem ? { cert: Buffer.from(certPem), key: Buffer.from(keyPem) } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  };
}

/** Runs the plugin: the process environment plus its own, KUBERNETES_EXEC_INFO, stderr passed through. */
export const spawnExec: ExecRunner = (exec, info) =>
  new Promise((resolve, reject) => {
    const interactive = exec.interactiveMode !== 'Never' && process.stdin.isTTY === true;
    const env: NodeJS.ProcessEnv = { ...process.env, KUBERNETES_EXEC_INFO: info };
    for (const e of exec.env) env[e.name] = e.value;
    const c = spawn(exec.command, exec.args, { env, stdio: [interactive ? 'inherit' : 'ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    c.on('error', (e: NodeJS.ErrnoException) => {
      const hint = e.code === 'ENOENT' ? `: executable ${exec.command} not found${exec.installHint ? `\n\n${exec.installHint.trim()}` : ''}` : `: ${e.message}`;
      reject(new Error(`exec credential plugin${hint}`));
    });
    c.on('close', (code, sig) => {
      if (code === 0) resolve(out);
      else reject(new Error(`exec credential plugin ${exec.command} ${sig ? `was killed by ${sig}` : `exited ${code}`}`));
    });
  });
