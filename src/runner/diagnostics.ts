// The diagnostics HTTP server, as Buildbarn components have one (global.diagnosticsHttpServer):
// GET /metrics (when enablePrometheus), /-/healthy (the process is up), /-/ready (the same check
// as CheckReadiness). Anything but GET or HEAD is refused with 405.
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { messageOf, MountatError } from '../base/index.js';

export interface DiagnosticsOptions {
  listen: Array<{ host: string; port: number }>;
  registry: Registry | undefined;
  /** Why the runner is not ready, or undefined when it is. */
  notReady: () => string | undefined;
}

export async function startDiagnostics(options: DiagnosticsOptions): Promise<{ addresses: string[]; close(): Promise<void> }> {
  const handler = (request: import('node:http').IncomingMessage, response: import('node:http').ServerResponse) => {
    const send = (code: number, body: string, type = 'text/plain; charset=utf-8', headers: Record<string, string> = {}) => {
      response.writeHead(code, { 'content-type': type, ...headers });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    const path = (request.url ?? '/').split('?')[0];
    const known = path === '/-/healthy' || path === '/-/ready' || (path === '/metrics' && options.registry);
    if (!known) return send(404, 'not found\n');
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(405, 'only GET\n', undefined, { allow: 'GET, HEAD' });
    if (path === '/-/healthy') return send(200, 'ok\n');
    if (path === '/-/ready') {
      const why = options.notReady();
      return why === undefined ? send(200, 'ready\n') : send(503, `not ready: ${why}\n`);
    }
    void options.registry!.metrics().then(
      (text) => send(200, text, options.registry!.contentType),
      (error: unknown) => send(500, `${messageOf(error)}\n`),
    );
  };
  const servers: Server[] = [];
  const addresses: string[] = [];
  for (const { host, port } of options.listen) {
    const server = createServer(handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) =>
        reject(new MountatError('precondition', `diagnostics server cannot listen on ${host}:${port}: ${error.message}`, { cause: error })),
      );
      server.listen(port, host === '' ? undefined : host, () => resolve());
    });
    const address = server.address();
    addresses.push(typeof address === 'object' && address ? `${address.address}:${address.port}` : String(address));
    servers.push(server);
  }
  return {
    addresses,
    async close() {
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}
