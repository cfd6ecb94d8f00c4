// The HTTPS front: POST /mutate and /validate answered by a lean handler,
// everything else (health, readiness, metrics, errors) by express; TLS 1.2+
// only, certificates swappable at run time; a graceful shutdown that turns
// readiness off first and lets in-flight requests finish.
import type { IncomingMessage, ServerResponse } from 'node:http';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Endpoint } from '../core/admission/decide.ts';
import type { TLSSocket } from 'node:tls';
import { errorReview, handleAdmission, type HandlerDeps, type HandlerResult } from './admission-handler.ts';
import type { Metrics } from './metrics.ts';
import type { CertPair } from './tls.ts';

/** Two whole objects of up to 1.5 MiB each (etcd's default request limit) plus the review around them. */
export const BODY_LIMIT_BYTES = 4 * 1024 * 1024;

export interface AppDeps extends HandlerDeps {
  metrics: Metrics;
  /** Ready to take admission requests (cache synced, not shutting down). */
  ready: () => boolean;
  shuttingDown: () => boolean;
  /** Development: sees every admission body. */
  capture?: (endpoint: string, body: unknown) => void;
  /**
   * With client authentication on (the TLS server then refuses any connection without a client
   * certificate signed by the client CA): the names (certificate CN or DNS SAN) admission requests
   * are taken from. Empty: any certificate the client CA signed.
   */
  clientNames?: readonly string[];
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The request listener. POST /mutate and /validate, which every admission request takes, go
 * straight to the admission handler; everything else (health, readiness, metrics, wrong methods,
 * unknown paths, errors) is the express app's. Express's per-request set-up (prototype swaps,
 * router, layers) measured 22 µs of CPU per request on this path, a fifth of what a bare Node
 * HTTPS JSON endpoint costs in all (bench/README.md).
 */
export function createWebhookApp(deps: AppDeps): RequestListener {
  const app = createExpressApp(deps);
  return (req, res) => {
    if (deps.shuttingDown()) res.setHeader('connection', 'close');
    const endpoint = req.method === 'POST' ? admissionEndpoint(req.url) : undefined;
    if (endpoint) answerAdmission(endpoint, req, res, deps);
    else app(req, res);
  };
}

/** The endpoint a request path names, matched as express would (case-insensitive, trailing slash, query string ignored). */
export function admissionEndpoint(url = ''): Endpoint | undefined {
  const q = url.indexOf('?');
  let path = q < 0 ? url : url.slice(0, q);
  if (path.length > 10) return undefined;
  if (path.endsWith('/')) path = path.slice(0, -1);
  path = path.toLowerCase();
  return path === '/mutate' ? 'mutate' : path === '/validate' ? 'validate' : undefined;
}

/** The API server's `timeout` query parameter (a Go duration such as 10s), in ms. */
export function requestTimeoutMs(url = ''): number | undefined {
  const m = /[?&]timeout=(\d+(?:\.\d+)?)(ms|s|m)(?:&|$)/.exec(url);
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

/** Who sent this request, when client authentication is on: undefined when acceptable, else why not. */
export function refusedClient(socket: IncomingMessage['socket'], names: readonly string[] | undefined): string | undefined {
  const tls = socket as TLSSocket;
  if (typeof tls.getPeerCertificate !== 'function' || names === undefined) return undefined;
  if (!tls.authorized) return 'no client certificate signed by the client CA';
  if (names.length === 0) return undefined;
  const cert = tls.getPeerCertificate();
  const cn = typeof cert.subject?.CN === 'string' ? cert.subject.CN : undefined;
  const sans = (cert.subjectaltname ?? '')
    .split(/,\s*/)
    .filter((x) => x.startsWith('DNS:'))
    .map((x) => x.slice(4));
  if ((cn && names.includes(cn)) || sans.some((n) => names.includes(n))) return undefined;
  return `client certificate ${JSON.stringify(cn ?? '')} is not one of the allowed names`;
}

function answerAdmission(endpoint: Endpoint, req: IncomingMessage, res: ServerResponse, deps: AppDeps): void {
  const fail = (e: unknown) => {
    if (res.headersSent) res.destroy();
    else answerError(e as HttpError, res, deps);
  };
  const refused = refusedClient(req.socket, deps.clientNames);
  if (refused) {
    deps.metrics.badRequests.inc({ reason: 'unauthenticated' });
    deps.log.warn({ remote: req.socket.remoteAddress, why: refused }, 'refused an admission request that did not come from the API server');
    req.resume();
    sendJson(res, 403, errorReview(undefined, `only the API server may send admission reviews here: ${refused}`, 403).body);
    return;
  }
  const timeoutMs = requestTimeoutMs(req.url);
  readJsonBody(req, (err, body) => {
    if (err) {
      fail(err);
      return;
    }
    const end = deps.metrics.latency.startTimer({ endpoint });
    const answer = (r: HandlerResult) => {
      end();
      try {
        sendJson(res, r.status, r.body);
      } catch (e) {
        fail(e);
      }
    };
    let out: ReturnType<typeof handleAdmission>;
    try {
      deps.capture?.(endpoint, body);
      out = handleAdmission(endpoint, body, deps, timeoutMs === undefined ? {} : { timeoutMs });
    } catch (e) {
      end();
      fail(e);
      return;
    }
    if (out instanceof Promise)
      out.then(answer, (e: unknown) => {
        end();
        fail(e);
      });
    else answer(out);
  });
}

type HttpError = Error & { type?: string; status?: number };

/** Errors as answers: 413 for a body over the limit, 400 for one that is not JSON, 500 for anything else. */
function answerError(err: HttpError, res: ServerResponse, deps: AppDeps): void {
  if (err.type === 'entity.too.large') {
    deps.metrics.badRequests.inc({ reason: 'too-large' });
    sendJson(res, 413, errorReview(undefined, `request body over ${BODY_LIMIT_BYTES} bytes`, 413).body);
    return;
  }
  if (err.type === 'entity.parse.failed' || err.type === 'encoding.unsupported' || err.type === 'charset.unsupported' || err.status === 400) {
    deps.metrics.badRequests.inc({ reason: 'undecodable' });
    sendJson(res, 400, errorReview(undefined, `malformed AdmissionReview: body is not valid JSON (${err.message})`).body);
    return;
  }
  deps.log.error({ err: err.message }, 'unexpected error answering a request');
  sendJson(res, 500, errorReview(undefined, 'internal error; see the webhook log', 500).body);
}

/** Everything but the admission POSTs: health, readiness, metrics, and the answers for wrong methods and paths. */
export function createExpressApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  for (const endpoint of ['mutate', 'validate'] as const)
    app.all(`/${endpoint}`, (_req, res) => {
      res.setHeader('allow', 'POST');
      sendJson(res, 405, { error: `/${endpoint} takes POST with an AdmissionReview` });
    });
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });
  app.get('/readyz', (_req, res) => {
    if (deps.ready()) res.type('text/plain').send('ok');
    else
      res
        .status(503)
        .type('text/plain')
        .send(deps.shuttingDown() ? 'shutting down' : 'not ready: the cache has not synced, or a watch is stale');
  });
  app.get('/metrics', async (_req, res, next) => {
    try {
      res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
    } catch (e) {
      next(e);
    }
  });
  app.use((_req, res) => {
    sendJson(res, 404, { error: 'not found: this server answers POST /mutate, POST /validate, GET /healthz, /readyz, /metrics' });
  });
  app.use((err: HttpError, _req: Request, res: Response, _next: NextFunction) => {
    answerError(err, res, deps);
  });
  return app;
}

/** A JSON answer: what res.json does for a plain object, without its per-call content negotiation. */
function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * The body as JSON, whatever the content type (the apiserver sends application/json; anything
 * else is judged by its content). Over BODY_LIMIT_BYTES: 413 without reading the rest. Leaner
 * than express.json on the path every admission request takes.
 */
function readJsonBody(req: IncomingMessage, next: (err?: unknown, body?: unknown) => void): void {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > BODY_LIMIT_BYTES) return next(Object.assign(new Error('request entity too large'), { type: 'entity.too.large', status: 413 }));
  const chunks: Buffer[] = [];
  let size = 0;
  let failed = false;
  req.on('data', (c: Buffer) => {
    if (failed) return;
    size += c.length;
    if (size > BODY_LIMIT_BYTES) {
      failed = true;
      req.pause();
      next(Object.assign(new Error('request entity too large'), { type: 'entity.too.large', status: 413 }));
      return;
    }
    chunks.push(c);
  });
  req.on('error', (e) => {
    if (!failed) {
      failed = true;
      next(e);
    }
  });
  req.on('end', () => {
    if (failed) return;
    let raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
    const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
    const charset = /charset=([^;\s]+)/i.exec(String(req.headers['content-type'] ?? ''))?.[1]?.toLowerCase();
    try {
      if (charset && charset !== 'utf-8' && charset !== 'utf8')
        throw Object.assign(new Error(`unsupported charset "${charset}"`), { type: 'charset.unsupported', status: 400 });
      if (encoding === 'gzip') raw = gunzipSync(raw, { maxOutputLength: BODY_LIMIT_BYTES });
      else if (encoding === 'deflate') raw = inflateSync(raw, { maxOutputLength: BODY_LIMIT_BYTES });
      else if (encoding !== 'identity')
        throw Object.assign(new Error(`unsupported content encoding "${encoding}"`), { type: 'encoding.unsupported', status: 400 });
    } catch (e) {
      const err = e as Error & { type?: string; code?: string };
      if (err.code === 'ERR_BUFFER_TOO_LARGE') return next(Object.assign(new Error('request entity too large'), { type: 'entity.too.large', status: 413 }));
      return next(err.type ? err : Object.assign(new Error(err.message), { type: 'entity.parse.failed', status: 400 }));
    }
    const text = raw.toString('utf8');
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch (e) {
      return next(Object.assign(new Error((e as Error).message), { type: 'entity.parse.failed', status: 400 }));
    }
    next(undefined, body);
  });
}

export interface RunningServer {
  server: https.Server;
  port: number;
  setCertificate(p: CertPair): void;
  /** Stops accepting, lets in-flight requests finish, closes keep-alive connections. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * @param clientCa with it, the TLS handshake requires a client certificate signed by this CA (the
 *   API server's, from its AdmissionConfiguration): anything else is refused before a byte of HTTP.
 */
/** Plain HTTP for the kubelet's probes and Prometheus, when the HTTPS port requires client certificates. */
export function listenProbes(deps: AppDeps, host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer(createExpressApp(deps));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

export function listenHttps(app: RequestListener, tls: CertPair, host: string, port: number, clientCa?: string): Promise<RunningServer> {
  const clientAuth = clientCa ? { requestCert: true, rejectUnauthorized: true, ca: clientCa } : {};
  const server = https.createServer(
    { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', keepAliveTimeout: 65_000, headersTimeout: 66_000, requestTimeout: 70_000, ...clientAuth },
    app,
  );
  let inflight = 0;
  server.on('request', (_req, res) => {
    inflight++;
    res.on('close', () => inflight--);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const actual = (server.address() as AddressInfo).port;
      resolve({
        server,
        port: actual,
        setCertificate: (p) => server.setSecureContext({ cert: p.cert, key: p.key, minVersion: 'TLSv1.2', ...(clientCa ? { ca: clientCa } : {}) }),
        close: (timeoutMs = 25_000) =>
          new Promise<void>((done) => {
            const deadline = setTimeout(() => {
              server.closeAllConnections();
            }, timeoutMs);
            server.close(() => {
              clearTimeout(deadline);
              done();
            });
            server.closeIdleConnections();
            // Busy keep-alive connections get `connection: close` on their current response (createWebhookApp's request listener sets it while shutting down), then end.
            const poll = setInterval(() => {
              server.closeIdleConnections();
              if (inflight === 0) clearInterval(poll);
            }, 50);
            poll.unref();
          }),
      });
    });
  });
}
