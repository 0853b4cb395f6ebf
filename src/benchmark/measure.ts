/**
 * How the benchmark times things, interleaved finely so that a burst of load from something else
 * on the machine lands on every contender alike rather than on whichever ran at that moment:
 * - throughput: contenders take turns in short slices (≤ 100 ms) at a fixed concurrency until each
 *   has had its share of the cell's time; requests per second = requests / time, over its slices;
 * - latency: one client sends requests to each contender in turn, so neighbouring requests of
 *   every contender see the same machine; p50 per contender;
 * - in both, a request pays for what the one before it left running (a backend finishing its
 *   commit, a pool's housekeeping), so the order of turns changes each time and each contender
 *   follows each other one equally often (balancedOrders).
 * Every contender's requests are numbered from 0, so each sees the same tenants in the same order.
 * CPU is counted on both sides when it can be: this process (`process.cpuUsage`, which includes any
 * in-process server) and, for a server on this machine, the backends serving the contender.
 */
import type { CpuProbe } from './server-cpu.ts';

export interface Contender {
  run(i: number): Promise<unknown>;
  readonly server?: CpuProbe;
}

export interface Throughput {
  readonly requests: number;
  readonly seconds: number;
  readonly throughput: number;
  /** CPU of this process, µs. */
  readonly clientCpuMicros: number;
  /** CPU of the backends serving the contender, µs; undefined when /proc cannot see them. */
  readonly serverCpuMicros: number | undefined;
}

const SLICE_SECONDS = 0.1;

export async function measureThroughput(contenders: readonly Contender[], concurrency: number, seconds: number, signal?: AbortSignal): Promise<Throughput[]> {
  const totals = contenders.map(() => ({ requests: 0, seconds: 0, clientCpuMicros: 0, serverCpuMicros: 0 as number | undefined }));
  const slices = Math.max(1, Math.round(seconds / SLICE_SECONDS));
  for (const contender of contenders) await warmUp(contender, concurrency);
  const orders = balancedOrders(contenders.length);
  for (let s = 0; s < slices; s++) {
    for (const k of orders[s % orders.length]!) {
      signal?.throwIfAborted();
      const total = totals[k]!;
      const slice = await timeSlice(contenders[k]!, concurrency, seconds / slices, total.requests);
      total.requests += slice.requests;
      total.seconds += slice.seconds;
      total.clientCpuMicros += slice.clientCpuMicros;
      total.serverCpuMicros = total.serverCpuMicros === undefined || slice.serverCpuMicros === undefined ? undefined : total.serverCpuMicros + slice.serverCpuMicros;
    }
  }
  return totals.map((t) => ({ ...t, throughput: t.requests / t.seconds }));
}

/** p50 in µs per contender, from one client taking turns between them for `seconds` each. */
export async function measureLatency(contenders: readonly Contender[], seconds: number, signal?: AbortSignal): Promise<number[]> {
  const latencies: number[][] = contenders.map(() => []);
  for (const contender of contenders) await warmUp(contender, 1);
  const orders = balancedOrders(contenders.length);
  const deadline = performance.now() + seconds * contenders.length * 1000;
  for (let cycle = 0; cycle === 0 || performance.now() < deadline; cycle++) {
    signal?.throwIfAborted();
    for (const k of orders[cycle % orders.length]!) {
      const t = performance.now();
      await contenders[k]!.run(cycle);
      latencies[k]!.push((performance.now() - t) * 1000);
    }
  }
  return latencies.map((l) => median(l));
}

/**
 * Orders of turns in which each contender directly follows each other one equally often (a
 * Williams design): n orders for an even n, 2n for an odd one.
 */
export function balancedOrders(n: number): number[][] {
  const base = Array.from({ length: n }, (_, i) => (i % 2 ? (i + 1) / 2 : (n - i / 2) % n));
  const rows = Array.from({ length: n }, (_, r) => base.map((x) => (x + r) % n));
  return n % 2 ? [...rows, ...rows.map((row) => [...row].reverse())] : rows;
}

export interface Spread {
  readonly min: number;
  readonly median: number;
  readonly max: number;
}

export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { min: sorted[0]!, median, max: sorted[sorted.length - 1]! };
}

export function median(values: readonly number[]): number {
  return spread(values).median;
}

/** A few untimed requests: a pool that closed idle connections reopens them here. */
async function warmUp(contender: Contender, concurrency: number): Promise<void> {
  let next = 0;
  await clients(concurrency, async () => {
    while (next < concurrency * 4) await contender.run(next++);
  });
}

/**
 * Runs `concurrency` clients to the end; the first failure is thrown only once every client has
 * stopped, so no request is still in flight while the caller cleans up.
 */
async function clients(concurrency: number, client: () => Promise<void>): Promise<void> {
  const settled = await Promise.allSettled(Array.from({ length: concurrency }, client));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}

async function timeSlice(contender: Contender, concurrency: number, seconds: number, first: number) {
  const serverBefore = await contender.server?.sample();
  let next = first;
  let requests = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await clients(concurrency, async () => {
    // At least one request per client, however short the slice.
    do {
      await contender.run(next++);
      requests++;
    } while (performance.now() < deadline);
  });
  const elapsed = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const serverAfter = await contender.server?.sample();
  return {
    requests,
    seconds: elapsed,
    clientCpuMicros: used.user + used.system,
    serverCpuMicros: serverBefore && serverAfter ? cpuBetween(serverBefore, serverAfter) : undefined,
  };
}

/** A backend that appeared during the slice counts from zero: its whole life was in the slice. */
function cpuBetween(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>): number {
  let total = 0;
  for (const [pid, micros] of after) total += micros - (before.get(pid) ?? 0);
  return total;
}
