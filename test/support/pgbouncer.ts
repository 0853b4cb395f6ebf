/**
 * A real PgBouncer in transaction mode in front of the test database (DESIGN.md: pooling is
 * tested through PgBouncer, not assumed). Debian's `pgbouncer` package; `.ci/run` installs it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/embedded/index.ts';
import { postgresIds } from '../../src/embedded/binaries.ts';
import { listening } from './net.ts';

export function pgbouncerPath(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v pgbouncer || ls /usr/sbin/pgbouncer'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split('\n')[0] : undefined;
}

export interface Bouncer {
  readonly port: number;
  stop(): Promise<void>;
}

/** Every client of database `db` is forwarded to `target` as `user` (pool_mode = transaction). */
export async function startPgbouncer(target: URL, user: string, password: string, poolSize = 2): Promise<Bouncer> {
  const binary = pgbouncerPath();
  if (!binary) throw new Error('pgbouncer is not installed (apt-get install pgbouncer)');
  const dir = mkdtempSync(join(tmpdir(), 'tenantfence-bouncer-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  const db = decodeURIComponent(target.pathname.slice(1));
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    `[databases]
db = host=${target.hostname} port=${target.port || 5432} dbname=${db} user=${user} password=${password}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = ${poolSize}
max_client_conn = 200
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = ${join(dir, 'pgbouncer.log')}
pidfile = ${join(dir, 'pgbouncer.pid')}
`,
  );
  chmodSync(join(dir, 'pgbouncer.ini'), 0o644);
  // PgBouncer refuses to run as root; run it as the postgres OS user (which writes its log here).
  const ids = process.getuid?.() === 0 ? postgresIds() : undefined;
  if (ids) chownSync(dir, ids.uid, ids.gid);
  const child: ChildProcess = spawn(binary, [join(dir, 'pgbouncer.ini')], { ...ids, stdio: 'ignore' });
  for (let i = 0; i < 50 && !(await listening(port)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await listening(port))) {
    child.kill('SIGKILL');
    throw new Error('pgbouncer did not start');
  }
  return {
    port,
    async stop() {
      child.kill('SIGINT');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
