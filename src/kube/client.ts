// A small Kubernetes API client that speaks raw JSON, so objects compare
// byte-for-byte with what admission requests carry. @kubernetes/client-node
// does the hard part: reading kubeconfig and every kind of credential
// (certificates, tokens, exec plugins, in-cluster service accounts).
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiError } from './errors.ts';

export { ApiError, isStatus } from './errors.ts';

export interface ConnectOptions {
  kubeconfig?: string;
  context?: string;
  /** Use the pod's service account (in-cluster), ignoring kubeconfig. */
  inCluster?: boolean;
  /** Per-request timeout. */
  timeoutMs?: number;
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

export class KubeClient {
  readonly kc: KubeConfig;
  readonly server: URL;
  readonly defaultNamespace: string;
  private agent: https.Agent | undefined;
  private readonly timeoutMs: number;

  constructor(kc: KubeConfig, timeoutMs = 30_000) {
    this.kc = kc;
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error(`kubeconfig has no cluster for context ${JSON.stringify(kc.getCurrentContext())}`);
    this.server = new URL(cluster.server);
    const ctx = kc.getContextObject(kc.getCurrentContext());
    this.defaultNamespace = ctx?.namespace || 'default';
    this.timeoutMs = timeoutMs;
  }

  static connect(opts: ConnectOptions = {}): KubeClient {
    const kc = new KubeConfig();
    if (opts.inCluster) kc.loadFromCluster();
    else if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
    if (opts.context) {
      if (!kc.getContextObject(opts.context)) throw new Error(`context ${JSON.stringify(opts.context)} is not in the kubeconfig`);
      kc.setCurrentContext(opts.context);
    }
    return new KubeClient(kc, opts.timeoutMs);
  }

  /** Credentials for one request (tokens may rotate), and one keep-alive TLS agent for all. */
  private async requestOptions(): Promise<https.RequestOptions> {
    const o: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(o);
    if (!this.agent) {
      this.agent = new https.Agent({
        keepAlive: true,
        maxSockets: 32,
        ca: o.ca,
        cert: o.cert,
        key: o.key,
        ...(o.rejectUnauthorized !== undefined ? { rejectUnauthorized: o.rejectUnauthorized } : {}),
        ...(o.servername ? { servername: o.servername } : {}),
      });
    }
    return { headers: { ...(o.headers as Record<string, string>) }, ...(o.auth ? { auth: o.auth } : {}), agent: this.agent };
  }

  private url(path: string, query?: RequestOptions['query']): URL {
    const u = new URL(path, this.server);
    if (this.server.pathname !== '/' && !path.startsWith(this.server.pathname))
      u.pathname = this.server.pathname.replace(/\/$/, '') + path;
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const base = await this.requestOptions();
    const u = this.url(path, opts.query);
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: Record<string, string | number> = { ...(base.headers as Record<string, string>), accept: 'application/json' };
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
      req.setTimeout(opts.timeoutMs ?? this.timeoutMs, () => req.destroy(new Error(`${method} ${u.pathname}: timed out after ${opts.timeoutMs ?? this.timeoutMs} ms`)));
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
    const base = await this.requestOptions();
    const u = this.url(path, { ...query, watch: 'true', allowWatchBookmarks: 'true' });
    let lastRv = query?.resourceVersion !== undefined ? String(query.resourceVersion) : undefined;
    return new Promise((resolve, reject) => {
      const req = https.request(
        u,
        { ...base, method: 'GET', headers: { ...(base.headers as Record<string, string>), accept: 'application/json' }, signal },
        (res) => {
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
        },
      );
      req.on('error', (e) => (signal?.aborted ? resolve(lastRv) : reject(e)));
      req.end();
    });
  }

  close(): void {
    this.agent?.destroy();
  }
}

export const paths = {
  deployments: (ns?: string, name?: string) =>
    `/apis/apps/v1${ns ? `/namespaces/${encodeURIComponent(ns)}` : ''}/deployments${name ? `/${encodeURIComponent(name)}` : ''}`,
  deploymentScale: (ns: string, name: string) => `${paths.deployments(ns, name)}/scale`,
  services: (ns?: string, name?: string) =>
    `/api/v1${ns ? `/namespaces/${encodeURIComponent(ns)}` : ''}/services${name ? `/${encodeURIComponent(name)}` : ''}`,
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
