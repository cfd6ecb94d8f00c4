// A bare client for the local control plane's API server that keeps what
// KubeClient drops: the HTTP status and the Warning headers (where the webhook's
// "redirected to the idle colour" message travels, and what kubectl prints as
// "Warning: ..."). Used for storms of requests, where spawning kubectl for each
// would measure kubectl more than the system.
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { clusterEnv } from './cluster.ts';

export interface RawResponse<T = any> {
  status: number;
  /** Parsed JSON body (undefined when empty or not JSON). */
  body: T;
  text: string;
  /** The text of each Warning header, unquoted, in order. */
  warnings: string[];
  ms: number;
}

export interface RawRequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string>;
  timeoutMs?: number;
}

/** Parses RFC 7234 warning values: `299 - "text"` (the text may hold escaped quotes). */
export function parseWarnings(rawHeaders: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== 'warning') continue;
    const re = /\d{3} \S+ "((?:[^"\\]|\\.)*)"/g;
    for (const m of rawHeaders[i + 1]!.matchAll(re)) out.push(m[1]!.replace(/\\(.)/g, '$1'));
  }
  return out;
}

export class RawApi {
  private readonly server: URL;
  private readonly agent: https.Agent;
  private readonly headers: Record<string, string>;
  private constructor(server: URL, agent: https.Agent, headers: Record<string, string>) {
    this.server = server;
    this.agent = agent;
    this.headers = headers;
  }

  static async connect(kubeconfig: string = clusterEnv().kubeconfig): Promise<RawApi> {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    const o: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(o);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 64, ca: o.ca, cert: o.cert, key: o.key });
    return new RawApi(new URL(kc.getCurrentCluster()!.server), agent, { ...((o.headers as Record<string, string>) ?? {}) });
  }

  /** Resolves with any HTTP status; rejects only when no HTTP answer came. */
  request<T = any>(method: string, path: string, opts: RawRequestOptions = {}): Promise<RawResponse<T>> {
    const u = new URL(path, this.server);
    for (const [k, v] of Object.entries(opts.query ?? {})) u.searchParams.set(k, v);
    const payload = opts.body === undefined ? undefined : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
    const headers: Record<string, string | number> = { ...this.headers, accept: 'application/json' };
    if (payload) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = payload.length;
    }
    const start = performance.now();
    return new Promise((resolve, reject) => {
      const req = https.request(u, { method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: body as T, text, warnings: parseWarnings(res.rawHeaders), ms: performance.now() - start });
        });
      });
      req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`${method} ${u.pathname}: no answer in ${opts.timeoutMs ?? 30_000} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** A strategic-merge PATCH setting one container's image, like `kubectl set image` sends. */
  setImage(namespace: string, deployment: string, container: string, image: string, opts: { dryRun?: boolean } = {}): Promise<RawResponse> {
    return this.request('PATCH', `/apis/apps/v1/namespaces/${namespace}/deployments/${deployment}`, {
      body: { spec: { template: { spec: { containers: [{ name: container, image }] } } } },
      contentType: 'application/strategic-merge-patch+json',
      query: { fieldManager: 'kubectl-set', ...(opts.dryRun ? { dryRun: 'All' } : {}) },
    });
  }

  get<T = any>(path: string): Promise<RawResponse<T>> {
    return this.request<T>('GET', path);
  }

  close(): void {
    this.agent.destroy();
  }
}
