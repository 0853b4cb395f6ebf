/**
 * The layers the red team attacks through (runner.ts `Door`):
 * - on a fixture (fixture.ts): the gateway in-process (Hono `app.request`, write mode, so writes
 *   are tried for real), the MCP server over an in-memory client, and `withTenant` as the app role;
 * - on a running gateway (`--gateway URL --token-a --token-b`): its HTTP API, with B's data read
 *   through B's own token for the markers and the checksum.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { SignJWT } from 'jose';
import { withTenant } from '../adapters/pg.ts';
import { signContext } from '../context/token.ts';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { createGateway, type GatewayApp } from '../gateway/http.ts';
import { createMcpServer } from '../gateway/mcp.ts';
import type { RedteamCase } from './corpus.ts';
import { TENANT_A, TENANT_B, type Fixture } from './fixture.ts';
import type { Door, Reply, Target } from './runner.ts';

const CONTROL = 'SELECT count(*)::int AS n, md5(string_agg(transcript, \'|\' ORDER BY id)) AS digest FROM conversations';
/** Per-request noise an oracle must not compare: ids, timings, the MCP boundary's nonce. */
const noise = (text: string) => text.replace(/untrusted-data-[0-9a-f]+/g, 'untrusted-data').replace(/"durationMs":[0-9.]+/g, '');

export interface FixtureTarget extends Target {
  close(): Promise<void>;
}

export async function fixtureTarget(fixture: Fixture): Promise<FixtureTarget> {
  const jwtSecret = randomBytes(32).toString('hex');
  const token = (tenant: string, sub: string) =>
    new SignJWT({ tenant_id: tenant, sub }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('2h').sign(new TextEncoder().encode(jwtSecret));
  const [tokenA, tokenB] = await Promise.all([token(TENANT_A, 'redteam-a'), token(TENANT_B, 'redteam-b')]);
  const gateway: GatewayApp = createGateway({
    pool: fixture.pool(fixture.roles.agent, { max: 10 }),
    auditPool: fixture.pool(fixture.roles.agent, { max: 2 }),
    key: fixture.key,
    auth: { jwtSecret },
    mode: 'write',
    statementTimeoutMs: 2000,
    // The corpus runs hundreds of statements in a row as one tenant; the limits have their own tests.
    limits: { ratePerSecond: 100_000, burst: 100_000 },
  });
  await gateway.service.start();
  const service = gateway.service;
  const mcp = async (tenant: string, sub: string) => {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await createMcpServer(service, async () => ({ tenant, subject: sub })).connect(serverSide);
    const client = new Client({ name: 'tenantfence-redteam', version: '1' });
    await client.connect(clientSide);
    return client;
  };
  const [mcpA, mcpB] = await Promise.all([mcp(TENANT_A, 'redteam-a'), mcp(TENANT_B, 'redteam-b')]);
  const appPool = fixture.pool(fixture.roles.app, { max: 4 });

  const http = httpDoor((path, init) => Promise.resolve(gateway.request(path, init)), tokenA, tokenB);
  const mcpDoor: Door = {
    layer: 'mcp',
    async attack(c) {
      const args = c.tool === 'describe_table' ? { table: c.table ?? '' } : c.tool === 'list_tables' ? {} : { sql: c.sql, ...(c.params.length ? { params: c.params } : {}) };
      const r = (await mcpA.callTool({ name: c.tool, arguments: args })) as { isError?: boolean };
      const text = JSON.stringify(r);
      return { answered: r.isError !== true, text, shape: noise(text) };
    },
    async control() {
      const r = (await mcpB.callTool({ name: 'query', arguments: { sql: CONTROL } })) as { isError?: boolean; structuredContent?: { rows?: unknown } };
      if (r.isError) throw new Error(JSON.stringify(r).slice(0, 200));
      return JSON.stringify(r.structuredContent?.rows);
    },
  };
  const appDoor: Door = {
    layer: 'app',
    async attack(c) {
      if (c.tool !== 'query') return { answered: false, text: 'no such tool for application SQL', shape: 'n/a' };
      const notices: string[] = [];
      try {
        const rows = await withTenant(appPool, TENANT_A, async (client) => {
          const on = (client as { on?: (e: string, f: (n: { message?: string; detail?: string }) => void) => void }).on;
          const listener = (n: { message?: string; detail?: string }) => notices.push(`${n.message ?? ''} ${n.detail ?? ''}`);
          on?.call(client, 'notice', listener);
          try {
            const r = await client.query(c.sql, c.params.length ? [...c.params] : undefined);
            return Array.isArray(r) ? r.map((x: { rows?: unknown }) => x.rows) : r.rows;
          } finally {
            (client as { off?: (e: string, f: unknown) => void }).off?.('notice', listener);
          }
        }, { key: fixture.key });
        const text = `${JSON.stringify(rows)} ${notices.join(' ')}`;
        return { answered: true, text, shape: text };
      } catch (error) {
        const e = error as { message?: string; detail?: string; hint?: string; code?: string };
        const text = `${e.code ?? ''} ${e.message ?? ''} ${e.detail ?? ''} ${e.hint ?? ''} ${notices.join(' ')}`;
        return { answered: false, text, shape: `${e.code ?? ''} ${e.message ?? ''}` };
      }
    },
    async control() {
      const rows = await withTenant(appPool, TENANT_B, async (client) => (await client.query(CONTROL)).rows, { key: fixture.key });
      return JSON.stringify(rows);
    },
  };
  const own = signContext(fixture.key, TENANT_A);
  return {
    doors: [http, mcpDoor, appDoor],
    markers: fixture.markers,
    tenants: { a: TENANT_A, b: TENANT_B },
    keys: { existing: fixture.bExistingId, missing: fixture.missingId },
    forged: own.replace(`.${TENANT_A}.`, `.${TENANT_B}.`),
    checksumB: () => fixture.checksumB(),
    async close() {
      await Promise.all([mcpA.close(), mcpB.close()]).catch(() => undefined);
      await gateway.close();
    },
  };
}

type Fetch = (path: string, init?: RequestInit) => Promise<Response>;

function httpDoor(fetchPath: Fetch, tokenA: string, tokenB: string, control = CONTROL): Door {
  const auth = (token: string) => ({ Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' });
  return {
    layer: 'gateway',
    async attack(c: RedteamCase): Promise<Reply> {
      if (c.tool === 'explain') return { answered: false, text: 'the HTTP API has no explain route', shape: 'n/a' };
      const res = c.tool === 'query'
        ? await fetchPath('/v1/query', { method: 'POST', headers: auth(tokenA), body: JSON.stringify({ sql: c.sql, ...(c.params.length ? { params: c.params } : {}) }) })
        : await fetchPath('/v1/schema', { headers: auth(tokenA) });
      const text = await res.text();
      let shape = `${res.status}`;
      try {
        const body = JSON.parse(text) as { rows?: unknown; rowCount?: unknown; error?: { code?: string; reason?: string; sqlstate?: string; message?: string } };
        shape += ` ${JSON.stringify([body.rows, body.rowCount, body.error?.code, body.error?.reason, body.error?.sqlstate, body.error?.message])}`;
      } catch {
        shape += ` ${text}`;
      }
      return { answered: res.status === 200, text, shape };
    },
    async control() {
      const res = await fetchPath('/v1/query', { method: 'POST', headers: auth(tokenB), body: JSON.stringify({ sql: control }) });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
      return JSON.stringify(((await res.json()) as { rows?: unknown }).rows);
    },
  };
}

/**
 * A gateway someone runs (`--gateway URL --token-a JWT --token-b JWT`): B's data, read with B's
 * token from every table /v1/schema lists, gives the markers (text values A's token cannot read)
 * and the checksum; B's control is a read of the first table.
 */
export async function remoteTarget(url: string, tokenA: string, tokenB: string): Promise<Target> {
  const base = url.replace(/\/+$/, '');
  const fetchPath: Fetch = (path, init) => fetch(`${base}${path}`, init);
  const auth = (token: string) => ({ Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' });
  const schema = await fetchPath('/v1/schema', { headers: auth(tokenB) }).catch(() => undefined);
  if (!schema || schema.status !== 200) {
    throw new TenantfenceError(ErrorCodes.CONNECTION, `The gateway at ${base} did not answer GET /v1/schema for --token-b; check the URL and the token.`);
  }
  const tables = ((await schema.json()) as { tables: Array<{ schema: string; name: string }> }).tables;
  const quoted = tables.map((t) => `"${t.schema.replaceAll('"', '""')}"."${t.name.replaceAll('"', '""')}"`);
  const read = async (token: string) => {
    const all: unknown[] = [];
    for (const t of quoted) {
      const res = await fetchPath('/v1/query', { method: 'POST', headers: auth(token), body: JSON.stringify({ sql: `SELECT * FROM ${t} LIMIT 500` }) });
      all.push(res.status === 200 ? ((await res.json()) as { rows: unknown[] }).rows : []);
    }
    return all;
  };
  const strings = (value: unknown): string[] =>
    typeof value === 'string' ? [value] : Array.isArray(value) ? value.flatMap(strings) : value && typeof value === 'object' ? Object.values(value).flatMap(strings) : [];
  const seenByA = new Set(strings(await read(tokenA)));
  const bData = await read(tokenB);
  const markers = [...new Set(strings(bData))].filter((s) => s.length >= 8 && !seenByA.has(s));
  const firstId = strings((bData[0] as Array<Record<string, unknown>> | undefined)?.map((r) => String(r.id ?? '')) ?? []).find((s) => s !== '');
  const control = quoted[0] ? `SELECT count(*) AS n FROM ${quoted[0]}` : 'SELECT 1 AS one';
  const claim = (token: string) => {
    try {
      return String((JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { tenant_id?: unknown }).tenant_id ?? '');
    } catch {
      return '';
    }
  };
  return {
    doors: [httpDoor(fetchPath, tokenA, tokenB, control)],
    markers,
    tenants: { a: claim(tokenA), b: claim(tokenB) },
    keys: { existing: firstId ?? '1', missing: '987654321' },
    forged: '',
    async checksumB() {
      return createHash('sha256').update(JSON.stringify(await read(tokenB))).digest('hex');
    },
  };
}
