/** The bench result as a table for people (`--json` prints the object itself). */
import { QUERIES, QUERY_NAMES, VARIANTS, VARIANT_NAMES, type Absolute, type BenchResult, type Spread } from './index.ts';

const ratio = (s: Spread) => `${s.median.toFixed(2)} [${s.min.toFixed(2)}-${s.max.toFixed(2)}]`;
const micros = (n: number | null) => (n === null ? '-' : n.toFixed(0));

function absolutes(a: Absolute): string {
  return `${a.throughput.toFixed(0).padStart(7)} ${a.p50Micros.toFixed(0).padStart(6)} ${micros(a.clientCpuMicros).padStart(7)} ${micros(a.serverCpuMicros).padStart(7)}`;
}

export function formatBench(r: BenchResult): string {
  const c = r.settings.concurrency;
  const lines = [
    `tenantfence bench: PostgreSQL ${r.server.version}; ${r.dataset.rows} rows, ${r.dataset.tenants} tenants (Zipf ${r.dataset.zipfExponent}: ${r.dataset.largestTenantRows} to ${r.dataset.smallestTenantRows} rows each)`,
    `${r.settings.repeat} round${r.settings.repeat === 1 ? '' : 's'} x ${r.settings.durationSeconds} s per cell; throughput at concurrency ${c.queries} (gateway ${c.gateway}), p50 at ${c.latency}; ${r.machine.cpus} CPUs, load ${r.machine.loadAverage.map((l) => l.toFixed(1)).join(' -> ')}`,
    `ratios: median [min-max] of paired ratios to the baseline in the same round; throughput higher is better, p50 lower is better`,
    '',
    `${'request'.padEnd(36)} ${'throughput'.padEnd(18)} ${'p50'.padEnd(18)} ${'req/s'.padStart(7)} ${'p50 µs'.padStart(6)} ${'cpu µs'.padStart(7)} ${'db µs'.padStart(7)}`,
  ];
  for (const q of QUERIES) {
    lines.push(`${q} ${QUERY_NAMES[q]}`);
    for (const v of VARIANTS) {
      const name = `  ${v} ${VARIANT_NAMES[v]}, ${r.settings.roundTrips[v]} rt`.padEnd(36);
      const [t, p] = v === 'V0' ? ['1 (baseline)', '1 (baseline)'] : [ratio(r.ratios[q][`${v}/V0`]), ratio(r.p50Ratios[q][`${v}/V0`])];
      lines.push(`${name} ${t.padEnd(18)} ${p.padEnd(18)} ${absolutes(r.absolute[q][v])}`);
    }
  }
  lines.push('gateway: latest 20 over HTTP');
  lines.push(`${'  naive (no auth, no firewall)'.padEnd(36)} ${'1 (baseline)'.padEnd(18)} ${'1 (baseline)'.padEnd(18)} ${absolutes(r.absolute.gateway.naive)}`);
  lines.push(`${'  tenantfence serve'.padEnd(36)} ${ratio(r.gateway['throughput/naive']).padEnd(18)} ${ratio(r.gateway['p50/naive']).padEnd(18)} ${absolutes(r.absolute.gateway.tenantfence)}`);
  lines.push('');
  lines.push(`verifier: ${r.verifierMicros.toFixed(1)} µs per current_tenant() call warm, ${r.verifierFirstCallMicros.toFixed(1)} µs for the first call in a transaction (server time)`);
  lines.push(`rt: round trips per request; cpu µs: this process per request (in-process gateways included); db µs: the serving backends per request (local servers only)`);
  return `${lines.join('\n')}\n`;
}
