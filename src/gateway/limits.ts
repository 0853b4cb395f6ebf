/**
 * Per-tenant limits (issue 3, item 5): a concurrency cap and a token bucket. One tenant's agent in
 * a loop must not take the pool, the CPU or the audit log from the others. State is in memory, per
 * gateway process: behind several replicas each enforces its own share.
 */
export interface LimitOptions {
  /** Sustained requests per second per tenant. */
  readonly ratePerSecond: number;
  /** Requests a tenant may make at once after being idle. */
  readonly burst: number;
  /** Statements of one tenant in flight at the same time. */
  readonly maxConcurrent: number;
}

export type Admission =
  | { readonly ok: true; release(): void }
  | { readonly ok: false; readonly reason: 'rate' | 'concurrency'; readonly retryAfterSeconds: number };

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

  constructor(options: LimitOptions, now: () => number = () => performance.now()) {
    this.#o = Object.freeze({ ...options });
    this.#now = now;
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
    if (b.inFlight >= this.#o.maxConcurrent) return { ok: false, reason: 'concurrency', retryAfterSeconds: 1 };
    if (b.tokens < 1) {
      return { ok: false, reason: 'rate', retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / this.#o.ratePerSecond)) };
    }
    b.tokens -= 1;
    b.inFlight += 1;
    const bucket = b;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        bucket.inFlight -= 1;
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
