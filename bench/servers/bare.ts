// Baseline server: a bare node:https server with the webhook's TLS and
// keep-alive settings that reads the body, JSON.parse's it and returns a
// fixed allow AdmissionReview carrying the request's uid. What any Node HTTPS
// JSON endpoint costs on this machine.
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { countRequests, serveIpc } from './ipc.ts';

let server: https.Server | undefined;

serveIpc({
  async start(a: { cert: string; key: string }): Promise<{ port: number }> {
    server = https.createServer(
      // The same options as src/webhook/server.ts listenHttps().
      { cert: a.cert, key: a.key, minVersion: 'TLSv1.2', keepAliveTimeout: 65_000, headersTimeout: 66_000, requestTimeout: 70_000 },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          let uid = '';
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request?: { uid?: unknown } };
            if (typeof body?.request?.uid === 'string') uid = body.request.uid;
          } catch {
            res.writeHead(400, { 'content-type': 'application/json; charset=utf-8' }).end('{"error":"not JSON"}');
            return;
          }
          const out = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } });
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(out) });
          res.end(out);
        });
      },
    );
    countRequests(server);
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return { port: (server.address() as AddressInfo).port };
  },
  async stop() {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    setImmediate(() => process.exit(0));
  },
});
