/**
 * Per-tenant limits (issue 3, item 5; issue 10, item 2): a token bucket, a concurrency cap, and a
 * share of the pool. One tenant's agent in a loop must not take the pool, the CPU or the audit log
 * from the others. State is in memory, per gateway process: behind several replicas each enforces
 * its own share.
 *
 * Sized against the pool: with a cap of 4 and a pool of 10, three accounts at the cap held every
 * connection, and other tenants' requests queued behind their slow statements (~1000x slower in
 * the red team's run). So a few connections (`reserved`: a quarter of the pool, at least one) are
 * kept for tenants with nothing running: a tenant that already has a statement running is admitted
 * only while more than `reserved` connections are free, and no tenant may hold more than the rest.
 * A tenant with nothing running is always admitted (then it waits for a connection like anyone).
 * Filling the pool now takes as many accounts as it has connections, each with one statement.
 */
export interface LimitOptions {
  /** Sustained requests per second per tenant. */
  readonly ratePerSecond: number;
  /** Requests a tenant may make at once after being idle. */
  readonly burst: number;
  /** Statements of one tenant in flight at the same time. */
  readonly maxConcurrent: number;
  /** The agent pool's size; unset: no pool-wide share (each tenant only has its own caps). */
  readonly capacity?: number;
}

export type Admission =
  | { readonly ok: true; release(): void }
  | { readonly ok: false; readonly reason: 'rate' | 'concurrency' | 'capacity'; readonly retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  at: number;
  inFlight: number;
}

/** Past this many tracked tenants, idle full buckets are forgotten (they hold no information). */
const SWEEP_AT = 10_000;

export class TenantLimiter {
  readonly #o: LimitOptions;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();
  /** Connections kept for tenants with nothing running, and what the busy ones may share. */
  readonly #shared: number;
  readonly #cap: number;
  #inFlight = 0;

  constructor(options: LimitOptions, now: () => number = () => performance.now()) {
    this.#o = Object.freeze({ ...options });
    this.#now = now;
    const capacity = options.capacity ?? Infinity;
    const reserved = capacity > 1 && Number.isFinite(capacity) ? Math.max(1, Math.floor(capacity / 4)) : 0;
    this.#shared = capacity - reserved;
    this.#cap = Math.max(1, Math.min(options.maxConcurrent, this.#shared));
  }

  /** Requests admitted and not yet released, all tenants together. */
  get inFlight(): number {
    return this.#inFlight;
  }

  acquire(tenant: string): Admission {
    const now = this.#now();
    let b = this.#buckets.get(tenant);
    if (!b) {
      if (this.#buckets.size >= SWEEP_AT) this.#sweep(now);
      b = { tokens: this.#o.burst, at: now, inFlight: 0 };
      this.#buckets.set(tenant, b);
    }
    b.tokens = Math.min(this.#o.burst, b.tokens + ((now - b.at) / 1000) * this.#o.ratePerSecond);
    b.at = now;
    // A refused request costs no token: a tenant that waits as told is served.
    if (b.inFlight >= this.#cap) return { ok: false, reason: 'concurrency', retryAfterSeconds: 1 };
    if (b.inFlight > 0 && this.#inFlight >= this.#shared) return { ok: false, reason: 'capacity', retryAfterSeconds: 1 };
    if (b.tokens < 1) {
      return { ok: false, reason: 'rate', retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / this.#o.ratePerSecond)) };
    }
    b.tokens -= 1;
    b.inFlight += 1;
    this.#inFlight += 1;
    const bucket = b;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        bucket.inFlight -= 1;
        this.#inFlight -= 1;
      },
    };
  }

  #sweep(now: number): void {
    for (const [tenant, b] of this.#buckets) {
      const refilled = b.tokens + ((now - b.at) / 1000) * this.#o.ratePerSecond >= this.#o.burst;
      if (b.inFlight === 0 && refilled) this.#buckets.delete(tenant);
    }
  }
}
