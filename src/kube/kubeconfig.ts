// The project's own kubeconfig reader: what kubectl does with KUBECONFIG, --kubeconfig,
// --context and in-cluster service accounts, for the credentials a CLI meets in practice
// (client certificates, tokens, tokenFile, basic auth, impersonation, exec credential
// plugins), with no dependency beyond the yaml parser. It exists because loading
// @kubernetes/client-node just to read this file was most of a short `kubectl bg` command's
// time (868 of its 1,208 modules). What it does not cover, auth-provider (legacy oidc, gcp,
// azure) and proxy-url, it reports in `fallback`, and the client hands those configs to
// @kubernetes/client-node instead.
//
// The rules followed are client-go's (kubectl's):
// - KUBECONFIG is a list of files (':' separated; ';' on Windows), merged: for each cluster,
//   user and context name the first file that defines it wins, and so does the first
//   current-context. Missing files in the list are skipped; --kubeconfig names one file,
//   which must exist. With neither, ~/.kube/config; with no file at all, the in-cluster
//   service account when KUBERNETES_SERVICE_HOST is set.
// - Relative paths (certificate-authority, client-certificate, client-key, tokenFile, an exec
//   command containing a '/') are relative to the directory of the file that defines them.
// - *-data fields override the file fields next to them; a readable tokenFile overrides token.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

export const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface ExecConfig {
  apiVersion: string;
  command: string;
  args: string[];
  env: { name: string; value: string }[];
  installHint?: string;
  provideClusterInfo: boolean;
  interactiveMode?: 'Never' | 'IfAvailable' | 'Always';
}

export type Auth =
  | { type: 'none' }
  | { type: 'token'; token: string }
  /** Re-read on use (it may rotate), like a projected service account token; token is the static fallback. */
  | { type: 'tokenFile'; path: string; token?: string }
  | { type: 'basic'; username: string; password: string }
  | { type: 'exec'; exec: ExecConfig };

export interface Impersonation {
  user?: string;
  uid?: string;
  groups: string[];
  extra: Record<string, string[]>;
}

export interface TlsConfig {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipTLSVerify: boolean;
  /** tls-server-name: the name the server's certificate is checked against. */
  servername?: string;
}

export interface ResolvedKubeconfig {
  /** 'kubeconfig' or the in-cluster service account. */
  source: 'kubeconfig' | 'in-cluster';
  /** The files read, in merge order (empty in-cluster). */
  files: string[];
  context: string;
  cluster: string;
  user: string;
  server: string;
  /** The context's namespace, else "default". */
  namespace: string;
  tls: TlsConfig;
  auth: Auth;
  impersonate?: Impersonation;
  /** The cluster entry, as kubectl hands it to an exec plugin with provideClusterInfo. */
  clusterInfo: Record<string, unknown>;
  /** What this reader does not do itself (client-node takes over): e.g. ['auth-provider oidc']. */
  fallback: string[];
}

export interface LoadOptions {
  /** --kubeconfig: this one file, which must exist. */
  kubeconfig?: string;
  /** --context. */
  context?: string;
  /** The pod's service account, ignoring kubeconfig. */
  inCluster?: boolean;
  /** Default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Default os.homedir(). */
  home?: string;
  /** Default fs.readFileSync; tests give their own. */
  readFile?: (path: string) => Buffer;
  /** Where the in-cluster files are (tests). */
  inClusterDir?: string;
}

export class KubeconfigError extends Error {
  override name = 'KubeconfigError';
}

type Obj = Record<string, unknown>;
interface Named {
  name: string;
  value: Obj;
  /** Directory of the file that defined it, for relative paths. */
  dir: string;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function fileExists(readFile: (p: string) => Buffer, p: string): Buffer | undefined {
  try {
    return readFile(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KubeconfigError(`cannot read ${p}: ${(e as Error).message}`);
  }
}

/** The kubeconfig files in merge order, as kubectl picks them. */
export function kubeconfigFiles(opts: Pick<LoadOptions, 'kubeconfig' | 'env' | 'home'>): { files: string[]; explicit: boolean } {
  if (opts.kubeconfig) return { files: [opts.kubeconfig], explicit: true };
  const env = opts.env ?? process.env;
  const list = env.KUBECONFIG;
  if (list !== undefined && list !== '') {
    const seen = new Set<string>();
    const files = list.split(delimiter).filter((f) => f !== '' && !seen.has(f) && (seen.add(f), true));
    return { files, explicit: false };
  }
  return { files: [join(opts.home ?? env.HOME ?? homedir(), '.kube', 'config')], explicit: false };
}

export function loadKubeconfig(opts: LoadOptions = {}): ResolvedKubeconfig {
  const readFile = opts.readFile ?? ((p: string) => readFileSync(p));
  const env = opts.env ?? process.env;
  if (opts.inCluster) return inCluster(readFile, env, opts.inClusterDir ?? IN_CLUSTER_DIR);

  const { files, explicit } = kubeconfigFiles(opts);
  const clusters = new Map<string, Named>();
  const users = new Map<string, Named>();
  const contexts = new Map<string, Named>();
  let current: string | undefined;
  const read: string[] = [];
  for (const file of files) {
    const buf = fileExists(readFile, file);
    if (!buf) {
      if (explicit) throw new KubeconfigError(`stat ${file}: no such file or directory`);
      continue;
    }
    read.push(file);
    let doc: unknown;
    try {
      doc = parseYaml(buf.toString('utf8'));
    } catch (e) {
      throw new KubeconfigError(`error loading config file "${file}": ${(e as Error).message}`);
    }
    if (doc === null || doc === undefined) continue; // an empty file is an empty config
    if (!isObj(doc)) throw new KubeconfigError(`error loading config file "${file}": not a kubeconfig (a YAML mapping)`);
    const dir = dirname(resolve(file));
    collect(doc.clusters, 'cluster', dir, clusters, file);
    collect(doc.users, 'user', dir, users, file);
    collect(doc.contexts, 'context', dir, contexts, file);
    current ??= str(doc['current-context']);
  }

  if (read.length === 0) {
    if (!opts.context && str(env.KUBERNETES_SERVICE_HOST) && str(env.KUBERNETES_SERVICE_PORT))
      return inCluster(readFile, env, opts.inClusterDir ?? IN_CLUSTER_DIR);
    throw new KubeconfigError(`no kubeconfig: none of ${files.join(', ')} exists, and not running in a cluster`);
  }

  const contextName = opts.context ?? current;
  if (!contextName) throw new KubeconfigError('the kubeconfig has no current-context; pass --context');
  const ctx = contexts.get(contextName);
  if (!ctx) throw new KubeconfigError(`context "${contextName}" does not exist in the kubeconfig`);
  const clusterName = str(ctx.value.cluster);
  const cl = clusterName ? clusters.get(clusterName) : undefined;
  if (!cl) throw new KubeconfigError(`context "${contextName}": cluster "${clusterName ?? ''}" does not exist in the kubeconfig`);
  const userName = str(ctx.value.user) ?? '';
  // A context may name no user (anonymous); a named user that is missing is an error, as in kubectl.
  const us = userName ? users.get(userName) : undefined;
  if (userName && !us) throw new KubeconfigError(`context "${contextName}": user "${userName}" does not exist in the kubeconfig`);

  const c = cl.value;
  const u = us?.value ?? {};
  const server = str(c.server);
  if (!server) throw new KubeconfigError(`cluster "${clusterName}" has no server`);
  const fallback: string[] = [];
  if (isObj(u['auth-provider'])) fallback.push(`auth-provider ${str(u['auth-provider'].name) ?? '?'}`);
  if (str(c['proxy-url'])) fallback.push('proxy-url');

  const tls: TlsConfig = {
    ca: dataOrFile(readFile, c, 'certificate-authority', cl.dir),
    cert: dataOrFile(readFile, u, 'client-certificate', us?.dir ?? ''),
    key: dataOrFile(readFile, u, 'client-key', us?.dir ?? ''),
    insecureSkipTLSVerify: c['insecure-skip-tls-verify'] === true,
    ...(str(c['tls-server-name']) ? { servername: str(c['tls-server-name']) } : {}),
  };
  if (!!tls.cert !== !!tls.key) throw new KubeconfigError(`user "${userName}": client-certificate and client-key must be given together`);

  return {
    source: 'kubeconfig',
    files: read,
    context: contextName,
    cluster: clusterName!,
    user: userName,
    server,
    namespace: str(ctx.value.namespace) ?? 'default',
    tls,
    auth: authOf(u, us?.dir ?? '', userName),
    ...impersonationOf(u),
    clusterInfo: clusterInfo(c, tls),
    fallback,
  };
}

function collect(list: unknown, key: string, dir: string, into: Map<string, Named>, file: string): void {
  if (list === undefined || list === null) return;
  if (!Array.isArray(list)) throw new KubeconfigError(`error loading config file "${file}": ${key}s is not a list`);
  for (const e of list) {
    if (!isObj(e) || !str(e.name)) continue;
    const name = e.name as string;
    if (into.has(name)) continue; // the first file wins
    into.set(name, { name, value: isObj(e[key]) ? (e[key] as Obj) : {}, dir });
  }
}

function abs(dir: string, p: string): string {
  return isAbsolute(p) || !dir ? p : join(dir, p);
}

function dataOrFile(readFile: (p: string) => Buffer, o: Obj, field: string, dir: string): Buffer | undefined {
  const data = str(o[`${field}-data`]);
  if (data) return Buffer.from(data, 'base64');
  const file = str(o[field]);
  if (!file) return undefined;
  try {
    return readFile(abs(dir, file));
  } catch (e) {
    throw new KubeconfigError(`${field} ${abs(dir, file)}: ${(e as Error).message}`);
  }
}

function authOf(u: Obj, dir: string, userName: string): Auth {
  if (isObj(u.exec)) return { type: 'exec', exec: execOf(u.exec, dir, userName) };
  const token = str(u.token);
  const tokenFile = str(u.tokenFile);
  if (tokenFile) return { type: 'tokenFile', path: abs(dir, tokenFile), ...(token ? { token } : {}) };
  if (token) return { type: 'token', token };
  const username = str(u.username);
  if (username) return { type: 'basic', username, password: typeof u.password === 'string' ? u.password : '' };
  return { type: 'none' };
}

function execOf(e: Obj, dir: string, userName: string): ExecConfig {
  const command = str(e.command);
  if (!command) throw new KubeconfigError(`user "${userName}": exec has no command`);
  const apiVersion = str(e.apiVersion);
  if (!apiVersion) throw new KubeconfigError(`user "${userName}": exec has no apiVersion`);
  const mode = str(e.interactiveMode);
  if (mode !== undefined && mode !== 'Never' && mode !== 'IfAvailable' && mode !== 'Always')
    throw new KubeconfigError(`user "${userName}": exec interactiveMode ${JSON.stringify(mode)} is not Never, IfAvailable or Always`);
  return {
    apiVersion,
    // kubectl: a command with a path separator is relative to the kubeconfig; a bare name is looked up on PATH.
    command: command.includes('/') ? abs(dir, command) : command,
    args: Array.isArray(e.args) ? e.args.map(String) : [],
    env: Array.isArray(e.env) ? e.env.filter(isObj).map((x) => ({ name: String(x.name ?? ''), value: String(x.value ?? '') })) : [],
    ...(str(e.installHint) ? { installHint: str(e.installHint) } : {}),
    provideClusterInfo: e.provideClusterInfo === true,
    ...(mode ? { interactiveMode: mode } : {}),
  };
}

function impersonationOf(u: Obj): { impersonate?: Impersonation } {
  const user = str(u.as);
  const uid = str(u['as-uid']);
  const groups = Array.isArray(u['as-groups']) ? u['as-groups'].map(String) : [];
  const extra: Record<string, string[]> = {};
  if (isObj(u['as-user-extra'])) for (const [k, v] of Object.entries(u['as-user-extra'])) extra[k] = Array.isArray(v) ? v.map(String) : [String(v)];
  if (!user && !uid && groups.length === 0 && Object.keys(extra).length === 0) return {};
  return { impersonate: { ...(user ? { user } : {}), ...(uid ? { uid } : {}), groups, extra } };
}

/** The Cluster object of an ExecCredential's spec (client.authentication.k8s.io), for provideClusterInfo. */
function clusterInfo(c: Obj, tls: TlsConfig): Record<string, unknown> {
  const ext = Array.isArray(c.extensions) ? c.extensions.find((x) => isObj(x) && x.name === 'client.authentication.k8s.io/exec') : undefined;
  return {
    server: c.server,
    ...(str(c['tls-server-name']) ? { 'tls-server-name': c['tls-server-name'] } : {}),
    ...(c['insecure-skip-tls-verify'] === true ? { 'insecure-skip-tls-verify': true } : {}),
    ...(tls.ca ? { 'certificate-authority-data': tls.ca.toString('base64') } : {}),
    ...(str(c['proxy-url']) ? { 'proxy-url': c['proxy-url'] } : {}),
    ...(isObj(ext) && ext.extension !== undefined ? { config: ext.extension } : {}),
  };
}

function inCluster(readFile: (p: string) => Buffer, env: Readonly<Record<string, string | undefined>>, dir: string): ResolvedKubeconfig {
  const host = str(env.KUBERNETES_SERVICE_HOST);
  const port = str(env.KUBERNETES_SERVICE_PORT);
  if (!host || !port) throw new KubeconfigError('not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set');
  const tokenPath = join(dir, 'token');
  if (!fileExists(readFile, tokenPath)) throw new KubeconfigError(`in-cluster: ${tokenPath} does not exist`);
  const ca = fileExists(readFile, join(dir, 'ca.crt'));
  const nsFile = fileExists(readFile, join(dir, 'namespace'));
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    source: 'in-cluster',
    files: [],
    context: 'in-cluster',
    cluster: 'in-cluster',
    user: 'in-cluster',
    server,
    namespace: str(env.POD_NAMESPACE) ?? nsFile?.toString('utf8').trim() ?? 'default',
    tls: { ...(ca ? { ca } : {}), insecureSkipTLSVerify: false },
    auth: { type: 'tokenFile', path: tokenPath },
    clusterInfo: { server, ...(ca ? { 'certificate-authority-data': ca.toString('base64') } : {}) },
    fallback: [],
  };
}
