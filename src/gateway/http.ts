/**
 * The REST door of the gateway (issue 3, item 1), a Hono app:
 *   POST /v1/query   {"sql", "params"?, "maxRows"?} → 200 rows | 4xx/5xx {"error": {"code", "message"}}
 *   GET  /v1/schema  what the agent may query, and that tenant filtering is automatic
 *   GET  /healthz    200 when the agent role can reach the database
 *   GET  /metrics    Prometheus text, for the metrics token only (probes.ts)
 * Every /v1 route needs a valid bearer JWT; a missing, invalid or expired one is a 401 before
 * anything runs. `createGateway()` returns the app, so tests call it in-process (`app.request()`).
 */
import { Hono, type Context } from 'hono';
import { ErrorCodes, isTenantfenceError } from '../errors.ts';
import { bearerToken, type Principal } from '../auth/index.ts';
import { errorBody, GatewayService, type ErrorResponse, type Reply } from './service.ts';
import type { GatewayOptions } from './options.ts';
import { mountProbes } from './probes.ts';

type Env = { Variables: { principal: Principal } };

export type GatewayApp = Hono<Env> & {
  readonly service: GatewayService;
  /** Ends the pools the gateway opened. */
  close(): Promise<void>;
};

export function createGateway(options: GatewayOptions | GatewayService): GatewayApp {
  const service = options instanceof GatewayService ? options : new GatewayService(options);
  const app = new Hono<Env>();

  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    const route = c.req.routePath && c.req.routePath !== '*' && c.res.status !== 404 ? c.req.routePath : 'unmatched';
    service.metrics.request(route, c.res.status, (performance.now() - started) / 1000);
  });

  mountProbes(app, service);

  app.use('/v1/*', async (c, next) => {
    try {
      c.set('principal', await service.authenticate(bearerToken(c.req.header('Authorization'))));
    } catch (error) {
      if (!isTenantfenceError(error)) throw error;
      service.metrics.rejection('unauthenticated');
      c.header('WWW-Authenticate', 'Bearer');
      return c.json(errorBody(error.code, error.message), 401);
    }
    await next();
  });

  app.post('/v1/query', async (c) => {
    const text = await readCapped(c.req.raw, service.options.maxBodyBytes);
    if (text === undefined) {
      service.metrics.rejection('body_too_large');
      return c.json(errorBody(ErrorCodes.PAYLOAD_TOO_LARGE, `The request body is over ${service.options.maxBodyBytes} bytes; send a shorter statement or fewer params.`), 413);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      service.metrics.rejection('bad_request');
      return c.json(errorBody(ErrorCodes.BAD_REQUEST, 'The body is not valid JSON; send {"sql": "SELECT ...", "params": [...]} with Content-Type: application/json.'), 400);
    }
    return send(c, await service.query(c.get('principal'), body));
  });

  app.get('/v1/schema', async (c) => {
    try {
      return c.json(await service.schema());
    } catch (error) {
      if (!isTenantfenceError(error)) throw error;
      return c.json(errorBody(error.code, error.message), 503);
    }
  });

  app.notFound((c) => c.json(errorBody(ErrorCodes.NOT_FOUND, `No route ${c.req.method} ${new URL(c.req.url).pathname.slice(0, 100)}; use POST /v1/query, GET /v1/schema or GET /healthz.`), 404));

  app.onError((_error, c) => {
    return c.json(errorBody(ErrorCodes.INTERNAL, 'The gateway failed unexpectedly; retry, and report it if it persists.'), 500);
  });

  return Object.assign(app, { service, close: () => service.close() });
}

function send(c: Context<Env>, reply: Reply<unknown>): Response {
  c.header('X-Request-Id', reply.requestId);
  if (!reply.ok && reply.retryAfterSeconds !== undefined) {
    c.header('Retry-After', String(reply.retryAfterSeconds));
  }
  return c.json(reply.body as ErrorResponse | object, reply.status as 200);
}

/**
 * The body as text, or undefined when it is over `max` bytes. A declared Content-Length is checked
 * before reading; a chunked body is read only up to the cap. (hono/body-limit does the same but
 * re-wraps every body in a new stream, which cost ~170 us per request in the gateway benchmark.)
 */
async function readCapped(request: Request, max: number): Promise<string | undefined> {
  const declared = request.headers.get('Content-Length');
  if (declared !== null && /^[0-9]+$/.test(declared)) {
    if (Number(declared) > max) return undefined;
    const text = await request.text();
    return Buffer.byteLength(text) > max ? undefined : text;
  }
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
