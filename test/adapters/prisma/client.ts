/**
 * The Prisma client for the tests, generated from schema.prisma on first use, offline: `prisma
 * generate` needs no engine download when PRISMA_SCHEMA_ENGINE_BINARY names any existing file (it
 * never runs it for `generate`). The output lives under node_modules, outside the repository.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const schema = fileURLToPath(new URL('./schema.prisma', import.meta.url));
const output = fileURLToPath(new URL('../../../node_modules/.tenantfence-test-prisma/client.ts', import.meta.url));

/** The generated module: `PrismaClient` and friends, typed loosely (the file exists only after generate). */
export async function loadPrisma(): Promise<{ PrismaClient: new (options: { adapter: unknown }) => any }> {
  // Test files run in parallel processes: one generates while the others wait for it.
  const lock = fileURLToPath(new URL('../../../node_modules/.tenantfence-test-prisma.lock', import.meta.url));
  for (let waited = 0; ; waited += 100) {
    try {
      mkdirSync(lock, { recursive: false });
      break;
    } catch {
      if (waited > 60_000) rmSync(lock, { recursive: true, force: true });
      await sleep(100);
    }
  }
  try {
    if (!existsSync(output) || statSync(output).mtimeMs < statSync(schema).mtimeMs) generate();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  return import(pathToFileURL(output).href);
}

function generate(): void {
  const cli = createRequire(import.meta.url).resolve('prisma/build/index.js');
  const r = spawnSync(process.execPath, [cli, 'generate', '--schema', schema], {
    encoding: 'utf8',
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
  });
  if (r.status !== 0) throw new Error(`prisma generate failed: ${r.stderr || r.stdout}`);
}
