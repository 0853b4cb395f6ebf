/**
 * `tenantfence bench`: what tenant isolation costs, as ratios against a baseline measured in the
 * same run. Every round measures every variant of every request, interleaved in short slices
 * (measure.ts), and a ratio is taken within one round (paired), so drift in the machine's load
 * moves both sides of a ratio together; the result is the min, median and max of those paired
 * ratios over the rounds.
 * Method and fairness choices: bench/README.md.
 */
import { Agent } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { createDataset, ZIPF_EXPONENT, type Dataset, type Pick, type Progress } from './dataset.ts';
import { measureLatency, measureThroughput, median, spread, type Spread, type Throughput } from './measure.ts';
import { backendCpu } from './server-cpu.ts';
import { APPLICATION_NAMES, QUERIES, ROUND_TRIPS, VARIANTS, variantRunners, type QueryId, type RunQuery, type Variant } from './variants.ts';
import { GATEWAYS, GATEWAY_APPLICATION_NAMES, startGateways, type GatewayId, type Gateways } from './gateways.ts';
import { verifierCost, type VerifierCost } from './verifier.ts';

export type { Progress } from './dataset.ts';
export type { Spread } from './measure.ts';
export { QUERIES, VARIANTS, QUERY_NAMES, VARIANT_NAMES } from './variants.ts';

/** Clients per cell: throughput with the database's CPUs busy, latency with nothing queued. */
export const CONCURRENCY = { queries: 4, gateway: 8, latency: 1 } as const;

export interface BenchOptions {
  /** An administrative URL (CREATEDB, CREATEROLE); undefined means libpq's PG* variables. */
  readonly url: string | undefined;
  readonly rows: number;
  readonly tenants: number;
  /** Seconds per timed cell. */
  readonly durationSeconds: number;
  /** Rounds; each yields one paired ratio per comparison. */
  readonly repeat: number;
  readonly progress?: Progress;
  /** Stops the run between requests; the scratch database is dropped and TF_INTERRUPTED thrown. */
  readonly signal?: AbortSignal;
}

export type Comparison = 'V1/V0' | 'V2/V0' | 'V3/V0';

export interface Absolute {
  /** Requests per second at the throughput concurrency (median over rounds). */
  readonly throughput: number;
  /** p50 latency at concurrency 1, µs (median over rounds). */
  readonly p50Micros: number;
  /** CPU of this process per request, µs (in-process gateways included), over all rounds. */
  readonly clientCpuMicros: number;
  /** CPU of the serving backends per request, µs; null when the server is not on this machine. */
  readonly serverCpuMicros: number | null;
}

export interface BenchResult {
  /** Throughput ratios (higher is better; 1 is the baseline's speed). */
  readonly ratios: Record<QueryId, Record<Comparison, Spread>>;
  /** p50 latency ratios (lower is better). */
  readonly p50Ratios: Record<QueryId, Record<Comparison, Spread>>;
  readonly gateway: { readonly 'throughput/naive': Spread; readonly 'p50/naive': Spread };
  /** Server µs per `current_tenant()` call, warm (many calls in one transaction). */
  readonly verifierMicros: number;
  /** Server µs of the first `current_tenant()` call in a transaction (what a request pays). */
  readonly verifierFirstCallMicros: number;
  readonly absolute: Record<QueryId, Record<Variant, Absolute>> & { readonly gateway: Record<GatewayId, Absolute> };
  readonly server: { readonly version: string };
  /** Other work on this machine is noise in every number: its CPUs and 1-minute load at start and end. */
  readonly machine: { readonly cpus: number; readonly loadAverage: readonly [number, number] };
  readonly dataset: { readonly rows: number; readonly tenants: number; readonly zipfExponent: number; readonly largestTenantRows: number; readonly smallestTenantRows: number };
  readonly settings: { readonly durationSeconds: number; readonly repeat: number; readonly concurrency: typeof CONCURRENCY; readonly roundTrips: typeof ROUND_TRIPS };
}

/** Per round: throughput (with CPU) and p50 of every contender, keyed "Q1.V0", "gateway.naive". */
interface Rounds {
  readonly throughput: Map<string, Throughput[]>;
  readonly p50: Map<string, number[]>;
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const progress = options.progress ?? (() => undefined);
  const loadAtStart = loadavg()[0]!;
  const { signal } = options;
  let ds: Dataset | undefined;
  let gateways: Gateways | undefined;
  try {
    ds = await createDataset(options.url, { rows: options.rows, tenants: options.tenants }, (phase, done, total) => {
      signal?.throwIfAborted();
      progress(phase, done, total);
    });
    const runners = variantRunners(ds, CONCURRENCY.queries);
    await checkAgreement(runners, ds.picks);
    gateways = await startGateways(ds, CONCURRENCY.gateway);
    const { rounds, verifier } = await measureRounds(ds, runners, gateways, options);
    return summarize(ds, options, rounds, verifier, loadAtStart);
  } catch (error) {
    if (signal?.aborted) throw new TenantfenceError(ErrorCodes.INTERRUPTED, 'The bench was interrupted; nothing was measured, and its scratch database and roles are dropped on the way out.');
    throw error;
  } finally {
    await gateways?.close().catch(() => undefined);
    await ds?.drop();
  }
}

/** A warm-up round, then `repeat` recorded rounds of every group of contenders and the verifier. */
async function measureRounds(ds: Dataset, runners: Record<Variant, RunQuery>, gw: Gateways, options: BenchOptions): Promise<{ rounds: Rounds; verifier: VerifierCost[] }> {
  const { signal, progress = () => undefined } = options;
  const rounds: Rounds = { throughput: new Map(), p50: new Map() };
  const verifier: VerifierCost[] = [];
  const loops = { warm: Math.max(5000, Math.round(12_500 * options.durationSeconds)), first: Math.max(2000, Math.round(5000 * options.durationSeconds)) };
  const pick = (i: number): Pick => ds.picks[i % ds.picks.length]!;
  const probe = (applicationName: string) => backendCpu(ds.admin, ds.database, applicationName);
  const queryContenders = (q: QueryId) => VARIANTS.map((v) => ({ key: `${q}.${v}`, run: (i: number) => runners[v](q, pick(i)), server: probe(APPLICATION_NAMES[v]) }));
  // One keep-alive agent per gateway, with a socket for every client of the busiest cell.
  const agents = GATEWAYS.map(() => new Agent({ keepAlive: true, maxSockets: CONCURRENCY.gateway }));
  const gatewayContenders = GATEWAYS.map((g, k) => ({ key: `gateway.${g}`, run: (i: number) => gw.post[g](pick(i), agents[k]!), server: probe(GATEWAY_APPLICATION_NAMES[g]) }));
  const groups = [...QUERIES.map((q) => ({ contenders: queryContenders(q), concurrency: CONCURRENCY.queries })), { contenders: gatewayContenders, concurrency: CONCURRENCY.gateway }];
  try {
    // Round 0 warms every path (plans, pools, JIT) and is not recorded.
    for (let round = 0; round <= options.repeat; round++) {
      const seconds = round === 0 ? Math.min(0.1, options.durationSeconds) : options.durationSeconds;
      for (const [g, { contenders, concurrency }] of groups.entries()) {
        const throughput = await measureThroughput(contenders, concurrency, seconds, signal);
        const p50 = await measureLatency(contenders, seconds, signal);
        progress('measure', round * groups.length + g + 1, (options.repeat + 1) * groups.length);
        if (round === 0) continue;
        contenders.forEach(({ key }, k) => {
          rounds.throughput.set(key, [...(rounds.throughput.get(key) ?? []), throughput[k]!]);
          rounds.p50.set(key, [...(rounds.p50.get(key) ?? []), p50[k]!]);
        });
      }
      const cost = await verifierCost(ds, ds.picks[0]!.tenant, loops);
      if (round > 0) verifier.push(cost);
    }
  } finally {
    for (const agent of agents) agent.destroy();
  }
  return { rounds, verifier };
}

/**
 * Before anything is timed: every variant returns the same rows for the same request, so no
 * variant is fast because it does less (or sees another tenant's rows). The copies are identical
 * until the first insert.
 */
async function checkAgreement(runners: Record<Variant, RunQuery>, picks: readonly Pick[]): Promise<void> {
  for (const pick of picks.slice(0, 3)) {
    for (const q of ['Q1', 'Q2', 'Q3'] as const) {
      const answers = await Promise.all(VARIANTS.map(async (v) => JSON.stringify(await runners[v](q, pick))));
      if (answers.some((a) => a !== answers[0]) || answers[0] === '[]') {
        throw new TenantfenceError(ErrorCodes.INTERNAL, `The bench's variants disagree on ${q} (or found nothing); the measurement would compare different work, so nothing was measured.`);
      }
    }
  }
}

function summarize(ds: Dataset, options: BenchOptions, rounds: Rounds, verifier: VerifierCost[], loadAtStart: number): BenchResult {
  const loaded = (key: string) => rounds.throughput.get(key)!;
  const p50 = (key: string) => rounds.p50.get(key)!;
  const paired = (a: readonly number[], b: readonly number[]) => spread(a.map((x, round) => x / b[round]!));
  const throughputRatio = (a: string, b: string) => paired(loaded(a).map((t) => t.throughput), loaded(b).map((t) => t.throughput));
  const absolute = (key: string): Absolute => {
    const cells = loaded(key);
    const requests = cells.reduce((n, c) => n + c.requests, 0);
    const server = cells.every((c) => c.serverCpuMicros !== undefined) ? cells.reduce((n, c) => n + c.serverCpuMicros!, 0) / requests : null;
    return {
      throughput: median(cells.map((c) => c.throughput)),
      p50Micros: median(p50(key)),
      clientCpuMicros: cells.reduce((n, c) => n + c.clientCpuMicros, 0) / requests,
      serverCpuMicros: server,
    };
  };
  const perQuery = <T>(fn: (q: QueryId) => T) => Object.fromEntries(QUERIES.map((q) => [q, fn(q)])) as Record<QueryId, T>;
  const comparisons = (fn: (v: Variant) => Spread) => Object.fromEntries((['V1', 'V2', 'V3'] as const).map((v) => [`${v}/V0`, fn(v)])) as Record<Comparison, Spread>;
  return {
    ratios: perQuery((q) => comparisons((v) => throughputRatio(`${q}.${v}`, `${q}.V0`))),
    p50Ratios: perQuery((q) => comparisons((v) => paired(p50(`${q}.${v}`), p50(`${q}.V0`)))),
    gateway: {
      'throughput/naive': throughputRatio('gateway.tenantfence', 'gateway.naive'),
      'p50/naive': paired(p50('gateway.tenantfence'), p50('gateway.naive')),
    },
    verifierMicros: median(verifier.map((v) => v.warmMicros)),
    verifierFirstCallMicros: median(verifier.map((v) => v.firstCallMicros)),
    absolute: {
      ...perQuery((q) => Object.fromEntries(VARIANTS.map((v) => [v, absolute(`${q}.${v}`)])) as Record<Variant, Absolute>),
      gateway: Object.fromEntries(GATEWAYS.map((g) => [g, absolute(`gateway.${g}`)])) as Record<GatewayId, Absolute>,
    },
    server: { version: ds.serverVersion },
    machine: { cpus: cpus().length, loadAverage: [loadAtStart, loadavg()[0]!] },
    dataset: {
      rows: options.rows,
      tenants: options.tenants,
      zipfExponent: ZIPF_EXPONENT,
      largestTenantRows: ds.tenantRows.largest,
      smallestTenantRows: ds.tenantRows.smallest,
    },
    settings: { durationSeconds: options.durationSeconds, repeat: options.repeat, concurrency: CONCURRENCY, roundTrips: ROUND_TRIPS },
  };
}
