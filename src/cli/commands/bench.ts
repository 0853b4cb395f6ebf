/**
 * `tenantfence bench`: the flags, checked before anything starts, then src/benchmark. A progress bar
 * goes to stderr when it is a terminal; the chart is written only once the run has succeeded.
 */
import { existsSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { TenantfenceError, ErrorCodes } from '../../errors.ts';
import { runBench, type BenchResult, type Progress } from '../../benchmark/index.ts';
import { formatBench } from '../../benchmark/report.ts';
import { renderSvg } from '../../benchmark/svg.ts';
import { dbOption, integer, openTarget, str, type Command, type Values } from '../args.ts';
import type { Io } from '../io.ts';

export interface BenchFlags {
  readonly rows: number;
  readonly tenants: number;
  readonly durationSeconds: number;
  readonly repeat: number;
  readonly svg: string | undefined;
}

export const BENCH_DEFAULTS = { rows: 100_000, tenants: 100, durationSeconds: 0.4, repeat: 5 } as const;

export function benchFlags(v: Values): BenchFlags {
  const flags = {
    rows: integer(v.rows, '--rows', BENCH_DEFAULTS.rows, 100, 100_000_000),
    tenants: integer(v.tenants, '--tenants', BENCH_DEFAULTS.tenants, 2, 1_000_000),
    durationSeconds: seconds(v.duration),
    repeat: integer(v.repeat, '--repeat', BENCH_DEFAULTS.repeat, 1, 1000),
    svg: svgPath(str(v.svg)),
  };
  if (flags.tenants > flags.rows) throw usage('--tenants must not exceed --rows (every tenant needs rows to query).');
  return flags;
}

export async function bench(flags: BenchFlags, url: string | undefined, progress?: Progress, signal?: AbortSignal): Promise<BenchResult> {
  const result = await runBench({ url, ...flags, ...(progress ? { progress } : {}), ...(signal ? { signal } : {}) });
  if (flags.svg) {
    // Whole or not at all: a reader never sees half a chart.
    const partial = `${flags.svg}.${process.pid}.tmp`;
    writeFileSync(partial, renderSvg(result));
    renameSync(partial, flags.svg);
  }
  return result;
}

export const benchCommand: Command = {
  summary: 'what isolation costs: ratios to app-layer filtering and to a naive gateway, in one run',
  usage: `tenantfence bench [--rows N] [--tenants N] [--duration S] [--repeat N] [--json] [--svg FILE] [--database-url URL]

Creates a scratch database (dropped at the end) with the seed's conversations table and N rows over
skewed (Zipf) tenants, then measures in interleaved rounds: Q1 a tenant's latest 20 rows, Q2 its row
count, Q3 a point lookup by id, Q4 an insert, each under V0 the query alone with an app-layer
WHERE tenant_id (no RLS), V1 the seed's recipe (GUC policy, set in BEGIN/COMMIT), V2 tenantfence's
single statement and V3 withTenant with one query; then tenantfence serve against a naive gateway.
Prints the min/median/max over rounds of each ratio to the baseline measured in the same round.
Needs a role that may create databases and roles; with no database given it starts an embedded PostgreSQL.
  --rows N        rows to load (default ${BENCH_DEFAULTS.rows})
  --tenants N     tenants, tenant k holding a share proportional to 1/k (default ${BENCH_DEFAULTS.tenants})
  --duration S    seconds per measured cell (default ${BENCH_DEFAULTS.durationSeconds}); a round has 36 cells
  --repeat N      rounds after one warm-up round (default ${BENCH_DEFAULTS.repeat})
  --json          print one JSON object (ratios, p50Ratios, gateway, verifierMicros, absolute, ...)
  --svg FILE      also draw the ratios as an SVG chart to FILE
Method and numbers: bench/README.md in the tenantfence repository.`,
  options: {
    ...dbOption,
    rows: { type: 'string' },
    tenants: { type: 'string' },
    duration: { type: 'string' },
    repeat: { type: 'string' },
    json: { type: 'boolean' },
    svg: { type: 'string' },
  },
  run: async (v, positionals, io) => {
    if (positionals.length > 0) throw usage('bench takes no positional arguments; see tenantfence bench --help.');
    const flags = benchFlags(v);
    // The first Ctrl-C stops the run and drops the scratch database; a second one kills at once.
    const stop = new AbortController();
    const abort = () => stop.abort();
    process.once('SIGINT', abort).once('SIGTERM', abort);
    const target = await openTarget(v, io, { embedded: true });
    try {
      const result = await bench(flags, target.url, process.stderr.isTTY ? progressBar(io) : undefined, stop.signal);
      io.out(v.json ? `${JSON.stringify(result)}\n` : formatBench(result));
      return 0;
    } finally {
      process.off('SIGINT', abort).off('SIGTERM', abort);
      await target.close();
    }
  },
};

function progressBar(io: Io): Progress {
  return (phase, done, total) => {
    const width = 30;
    const filled = total > 0 ? Math.round((done / total) * width) : width;
    io.err(`\r${phase.padEnd(7)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${done >= total ? '\n' : ''}`);
  };
}

function seconds(value: unknown): number {
  if (value === undefined) return BENCH_DEFAULTS.durationSeconds;
  const n = Number(value);
  if (!/^[0-9]*\.?[0-9]+$/.test(String(value)) || n < 0.05 || n > 600) throw usage('--duration must be a number of seconds from 0.05 to 600.');
  return n;
}

function svgPath(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  const dir = dirname(resolve(file));
  if (file === '' || !existsSync(dir) || !statSync(dir).isDirectory()) throw usage(`--svg ${file}: the directory ${dir} does not exist.`);
  if (existsSync(file) && statSync(file).isDirectory()) throw usage(`--svg ${file} is a directory; give a file name.`);
  return file;
}

function usage(message: string): TenantfenceError {
  return new TenantfenceError(ErrorCodes.USAGE, message);
}
