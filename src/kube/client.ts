// A small Kubernetes API client that speaks raw JSON, so objects compare
// byte-for-byte with what admission requests carry. Credentials come from the
// project's own kubeconfig reader (kubeconfig.ts, credentials.ts: certificates,
// tokens, tokenFile, impersonation, exec plugins run once per process, in-cluster
// service accounts); @kubernetes/client-node is loaded only for what that reader
// leaves to it (auth-provider, proxy-url), so a short CLI command does not pay for it.
import https from 'node:https';
import { Credentials, impersonationHeaders } from './credentials.ts';
import { ApiError, isStatus } from './errors.ts';
import { type Impersonation, loadKubeconfig, type ResolvedKubeconfig } from './kubeconfig.ts';

export { ApiError, isStatus } from './errors.ts';

export interface ConnectOptions {
  kubeconfig?: string;
  context?: string;
  /** Use the pod's service account (in-cluster), ignoring kubeconfig. */
  inCluster?: boolean;
  /** Per-request timeout. */
  timeoutMs?: number;
  /**
   * Send every request as this user and these groups (Impersonate-User, one Impersonate-Group
   * line per group), in place of any impersonation the kubeconfig names. The credentials' own
   * user must be allowed to `impersonate` them (`kubectl bg --break-glass`).
   */
  impersonate?: Impersonation;
}

export type PatchType = 'merge' | 'json' | 'strategic';
export const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface WatchEvent<T = unknown> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export interface ListResult<T> {
  items: T[];
  metadata: { resourceVersion?: string; continue?: string };
}

type Headers = Record<string, string | string[]>;
interface Base {
  headers: Headers;
  auth?: string;
  agent: https.Agent;
}

/** Where each request's headers and TLS agent come from. */
interface AuthSource {
  options(): Promise<Base>;
  /** After a 401: drop cached credentials. Returns whether a retry may get others. */
  invalidate(): boolean;
  close(): void;
}

/** The project's reader: one keep-alive agent, re-made only when an exec plugin hands out another client certificate. */
class NativeAuth implements AuthSource {
  private agent: https.Agent | undefined;
  private agentFor: { cert?: Buffer; key?: Buffer } = {};
  readonly creds: Credentials;
  private readonly cfg: ResolvedKubeconfig;
  constructor(cfg: ResolvedKubeconfig) {
    this.cfg = cfg;
    this.creds = new Credentials(cfg);
  }
  async options(): Promise<Base> {
    const c = await this.creds.forRequest();
    if (!this.agent || c.cert !== this.agentFor.cert || c.key !== this.agentFor.key) {
      this.agent?.destroy();
      const t = this.cfg.tls;
      this.agent = new https.Agent({
        keepAlive: true,
        maxSockets: 32,
        ...(t.ca ? { ca: t.ca } : {}),
        ...(c.cert ? { cert: c.cert, key: c.key } : {}),
        ...(t.insecureSkipTLSVerify ? { rejectUnauthorized: false } : {}),
        ...(t.servername ? { servername: t.servername } : {}),
      });
      this.agentFor = { cert: c.cert, key: c.key };
    }
    return { headers: c.headers, agent: this.agent };
  }
  invalidate(): boolean {
    if (!this.creds.usesExec) return false;
    this.creds.invalidate();
    return true;
  }
  close(): void {
    this.agent?.destroy();
  }
}

/** auth-provider and proxy-url: @kubernetes/client-node, loaded on first use. */
class ClientNodeAuth implements AuthSource {
  private kc: Promise<import('@kubernetes/client-node').KubeConfig> | undefined;
  private agent: https.Agent | undefined;
  private readonly opts: ConnectOptions;
  constructor(opts: ConnectOptions) {
    this.opts = opts;
  }
  private load() {
    this.kc ??= import('@kubernetes/client-node').then(({ KubeConfig }) => {
      const kc = new KubeConfig();
      if (this.opts.kubeconfig) kc.loadFromFile(this.opts.kubeconfig);
      else kc.loadFromDefault();
      if (this.opts.context) kc.setCurrentContext(this.opts.context);
      return kc;
    });
    return this.kc;
  }
  async options(): Promise<Base> {
    const kc = await this.load();
    const o: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(o);
    // client-node makes the agent (a proxy agent for proxy-url) and caches it per cluster and user.
    this.agent = o.agent as https.Agent;
    return { headers: { ...(o.headers as Headers) }, ...(o.auth ? { auth: o.auth } : {}), agent: this.agent };
  }
  invalidate(): boolean {
    return false;
  }
  close(): void {
    this.agent?.destroy();
  }
}

export class KubeClient {
  /** What the kubeconfig resolved to (context, server, namespace, kind of credentials). */
  readonly config: ResolvedKubeconfig;
  readonly server: URL;
  readonly defaultNamespace: string;
  private readonly auth: AuthSource;
  private readonly timeoutMs: number;
  private readonly impersonate: Headers | undefined;

  constructor(config: ResolvedKubeconfig, opts: ConnectOptions = {}) {
    this.config = config;
    this.server = new URL(config.server);
    this.defaultNamespace = config.namespace;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.auth = config.fallback.length ? new ClientNodeAuth(opts) : new NativeAuth(config);
    this.impersonate = opts.impersonate ? impersonationHeaders(opts.impersonate) : undefined;
  }

  /** The credentials' headers, with ConnectOptions.impersonate in place of the kubeconfig's (either auth source). */
  private headersOf(base: Base): Headers {
    if (!this.impersonate) return base.headers;
    const h: Headers = {};
    for (const [k, v] of Object.entries(base.headers)) if (!k.toLowerCase().startsWith('impersonate-')) h[k] = v;
    return { ...h, ...this.impersonate };
  }

  static connect(opts: ConnectOptions = {}): KubeClient {
    return new KubeClient(loadKubeconfig({ kubeconfig: opts.kubeconfig, context: opts.context, inCluster: opts.inCluster }), opts);
  }

  /** Which credentials code serves this client: the project's reader, or client-node (and why). */
  get credentialSource(): string {
    return this.config.fallback.length ? `@kubernetes/client-node (${this.config.fallback.join(', ')})` : 'kubeconfig reader';
  }

  /** How many times the exec credential plugin ran in this client (0 without one). */
  get execRuns(): number {
    return this.auth instanceof NativeAuth ? this.auth.creds.execRuns : 0;
  }

  private url(path: string, query?: RequestOptions['query']): URL {
    const u = new URL(path, this.server);
    if (this.server.pathname !== '/' && !path.startsWith(this.server.pathname)) u.pathname = this.server.pathname.replace(/\/$/, '') + path;
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    try {
      return await this.requestOnce<T>(method, path, opts);
    } catch (e) {
      // Exec credentials the server no longer takes: run the plugin again, once (as client-go does).
      if (isStatus(e, 401) && this.auth.invalidate()) return this.requestOnce<T>(method, path, opts);
      throw e;
    }
  }

  private async requestOnce<T>(method: string, path: string, opts: RequestOptions): Promise<T> {
    const base = await this.auth.options();
    const u = this.url(path, opts.query);
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: Record<string, string | string[] | number> = { ...this.headersOf(base), accept: 'application/json' };
    if (payload) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = payload.length;
    }
    return new Promise<T>((resolve, reject) => {
      const req = https.request(u, { ...base, method, headers, signal: opts.signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            /* not JSON: keep the text */
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(body as T);
          const st = (typeof body === 'object' && body ? body : {}) as { reason?: string; message?: string };
          reject(new ApiError(status, st.reason ?? String(status), st.message ?? `${method} ${u.pathname}: HTTP ${status} ${text.slice(0, 200)}`, body));
        });
      });
      req.setTimeout(opts.timeoutMs ?? this.timeoutMs, () =>
        req.destroy(new Error(`${method} ${u.pathname}: timed out after ${opts.timeoutMs ?? this.timeoutMs} ms`)),
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  get<T>(path: string, opts?: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, opts);
  }
  list<T>(path: string, query?: RequestOptions['query']): Promise<ListResult<T>> {
    return this.request<ListResult<T>>('GET', path, { query });
  }
  create<T>(path: string, body: unknown, query?: RequestOptions['query']): Promise<T> {
    return this.request<T>('POST', path, { body, query });
  }
  patch<T>(path: string, body: unknown, type: PatchType, query?: RequestOptions['query']): Promise<T> {
    return this.request<T>('PATCH', path, { body, query, contentType: PATCH_CONTENT_TYPE[type] });
  }
  delete<T>(path: string, query?: RequestOptions['query']): Promise<T> {
    return this.request<T>('DELETE', path, { query });
  }

  /**
   * Streams watch events until the server closes the stream, the signal aborts, or
   * an error. Resolves with the last resourceVersion seen.
   */
  async watch<T extends { metadata?: { resourceVersion?: string } }>(
    path: string,
    query: RequestOptions['query'],
    onEvent: (e: WatchEvent<T>) => void,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const base = await this.auth.options();
    const u = this.url(path, { ...query, watch: 'true', allowWatchBookmarks: 'true' });
    let lastRv = query?.resourceVersion !== undefined ? String(query.resourceVersion) : undefined;
    return new Promise((resolve, reject) => {
      const req = https.request(u, { ...base, method: 'GET', headers: { ...this.headersOf(base), accept: 'application/json' }, signal }, (res) => {
        if ((res.statusCode ?? 0) >= 300) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let st: { reason?: string; message?: string } = {};
            try {
              st = JSON.parse(text);
            } catch {
              /* keep empty */
            }
            reject(new ApiError(res.statusCode ?? 0, st.reason ?? '', st.message ?? text.slice(0, 200), st));
          });
          return;
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            let ev: WatchEvent<T>;
            try {
              ev = JSON.parse(line) as WatchEvent<T>;
            } catch {
              req.destroy(new Error('watch: undecodable event'));
              return;
            }
            if (ev.type === 'ERROR') {
              const st = ev.object as unknown as { code?: number; reason?: string; message?: string };
              req.destroy(new ApiError(st.code ?? 500, st.reason ?? 'Error', st.message ?? 'watch error', st));
              return;
            }
            lastRv = ev.object?.metadata?.resourceVersion ?? lastRv;
            onEvent(ev);
          }
        });
        res.on('end', () => resolve(lastRv));
        res.on('error', reject);
      });
      req.on('error', (e) => (signal?.aborted ? resolve(lastRv) : reject(e)));
      req.end();
    });
  }

  close(): void {
    this.auth.close();
  }
}

export const paths = {
  deployments: (ns?: string, name?: string) =>
    `/apis/apps/v1${ns ? `/namespaces/${encodeURIComponent(ns)}` : ''}/deployments${name ? `/${encodeURIComponent(name)}` : ''}`,
  services: (ns?: string, name?: string) => `/api/v1${ns ? `/namespaces/${encodeURIComponent(ns)}` : ''}/services${name ? `/${encodeURIComponent(name)}` : ''}`,
  horizontalPodAutoscalers: (ns?: string, name?: string) =>
    `/apis/autoscaling/v2${ns ? `/namespaces/${encodeURIComponent(ns)}` : ''}/horizontalpodautoscalers${name ? `/${encodeURIComponent(name)}` : ''}`,
  endpointSlices: (ns: string) => `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/endpointslices`,
  pods: (ns: string) => `/api/v1/namespaces/${encodeURIComponent(ns)}/pods`,
  secrets: (ns: string, name?: string) => `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets${name ? `/${encodeURIComponent(name)}` : ''}`,
  events: (ns: string) => `/api/v1/namespaces/${encodeURIComponent(ns)}/events`,
  subjectAccessReviews: () => '/apis/authorization.k8s.io/v1/subjectaccessreviews',
  selfSubjectReviews: () => '/apis/authentication.k8s.io/v1/selfsubjectreviews',
  leases: (ns: string, name?: string) =>
    `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/leases${name ? `/${encodeURIComponent(name)}` : ''}`,
  mutatingWebhookConfigurations: (name?: string) =>
    `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations${name ? `/${encodeURIComponent(name)}` : ''}`,
  validatingWebhookConfigurations: (name?: string) =>
    `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations${name ? `/${encodeURIComponent(name)}` : ''}`,
};
