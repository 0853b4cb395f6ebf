/**
 * `npm test`: runs every test file against one PostgreSQL. With DATABASE_URL (or
 * TEST_DATABASE_URL) it is that server; without, one embedded PostgreSQL is started here for the
 * whole run and stopped at the end. Each test then makes its own database and roles.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startEmbedded } from '../src/embedded/index.ts';

const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );

const filter = process.argv.slice(2);
const selected = files('test').sort().filter((f) => filter.length === 0 || filter.some((x) => f.includes(x)));
let url = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL;
const embedded = url ? undefined : await startEmbedded();
url ??= embedded!.url;
console.log(`# tests against ${embedded ? 'embedded PostgreSQL' : 'DATABASE_URL'}`);

const code = await new Promise<number>((resolve) => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...selected], {
    stdio: 'inherit',
    env: { ...process.env, TEST_DATABASE_URL: url },
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
});
await embedded?.stop();
process.exitCode = code;
