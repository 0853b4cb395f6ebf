/**
 * `GET /metrics` in the Prometheus text format (0.0.4). No tenant or principal ever becomes a
 * label: labels are routes, statuses and refusal reasons, a small fixed set, so a scrape shows
 * load and attacks without naming who.
 */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const MAX_SERIES = 200;

export interface PoolLike {
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
}

export class Metrics {
  readonly #requests = new Map<string, number>();
  readonly #rejections = new Map<string, number>();
  readonly #buckets = new Array<number>(BUCKETS.length).fill(0);
  #count = 0;
  #sum = 0;
  #auditFailures = 0;
  readonly #pools: Record<string, PoolLike> = {};

  watchPool(name: string, pool: PoolLike): void {
    this.#pools[name] = pool;
  }

  request(route: string, status: number, seconds: number): void {
    bump(this.#requests, `route="${label(route)}",status="${status}"`);
    this.#count += 1;
    this.#sum += seconds;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) this.#buckets[i]! += 1;
  }

  rejection(reason: string): void {
    bump(this.#rejections, `reason="${label(reason)}"`);
  }

  auditFailure(): void {
    this.#auditFailures += 1;
  }

  render(): string {
    const out: string[] = [];
    family(out, 'tenantfence_gateway_requests_total', 'counter', 'Requests by route and HTTP status.', this.#requests);
    family(out, 'tenantfence_gateway_rejections_total', 'counter', 'Requests refused before running, by reason (firewall reason, rate, concurrency, unauthenticated, bad_request).', this.#rejections);
    const h = 'tenantfence_gateway_request_duration_seconds';
    out.push(`# HELP ${h} Time from request to response.`, `# TYPE ${h} histogram`);
    BUCKETS.forEach((le, i) => out.push(`${h}_bucket{le="${le}"} ${this.#buckets[i]}`));
    out.push(`${h}_bucket{le="+Inf"} ${this.#count}`, `${h}_sum ${this.#sum}`, `${h}_count ${this.#count}`);
    out.push('# HELP tenantfence_gateway_audit_failures_total Audit records that could not be written (the response was withheld).');
    out.push('# TYPE tenantfence_gateway_audit_failures_total counter', `tenantfence_gateway_audit_failures_total ${this.#auditFailures}`);
    const p = 'tenantfence_gateway_pool_connections';
    out.push(`# HELP ${p} Database connections by pool and state.`, `# TYPE ${p} gauge`);
    for (const [name, pool] of Object.entries(this.#pools).sort()) {
      out.push(`${p}{pool="${label(name)}",state="total"} ${pool.totalCount}`);
      out.push(`${p}{pool="${label(name)}",state="idle"} ${pool.idleCount}`);
      out.push(`${p}{pool="${label(name)}",state="waiting"} ${pool.waitingCount}`);
    }
    return `${out.join('\n')}\n`;
  }
}

function bump(map: Map<string, number>, key: string): void {
  // A bounded number of series: anything past the cap is counted under "other".
  const k = map.has(key) || map.size < MAX_SERIES ? key : key.replace(/="[^"]*"/g, '="other"');
  map.set(k, (map.get(k) ?? 0) + 1);
}

function family(out: string[], name: string, type: string, help: string, series: Map<string, number>): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const [labels, value] of [...series].sort(([a], [b]) => (a < b ? -1 : 1))) out.push(`${name}{${labels}} ${value}`);
}

function label(value: string): string {
  return value.replace(/[^A-Za-z0-9_/.:-]/g, '_').slice(0, 64);
}
