/**
 * The server-side cost of `tenantfence.current_tenant()`, as the app role, with no network in it:
 * - warm: many calls in one transaction (a PL/pgSQL loop of PERFORM), minus the same loop
 *   performing a constant;
 * - first call in a transaction: a loop that sets the context, calls the verifier and commits, so
 *   every call is the first of its transaction, as in a request; minus the same loop without the call.
 * A DO block may COMMIT only outside a transaction block (PostgreSQL >= 11), which is how it runs here.
 */
import pg from 'pg';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import { CONTEXT_SETTING, signContext } from '../context/token.ts';
import { urlForRole } from '../embedded/database.ts';
import { literal } from '../sql/quote.ts';
import type { Dataset } from './dataset.ts';

export interface VerifierCost {
  readonly warmMicros: number;
  readonly firstCallMicros: number;
}

export async function verifierCost(ds: Dataset, tenant: string, loops: { warm: number; first: number }): Promise<VerifierCost> {
  const client = new pg.Client({ connectionString: urlForRole(ds.url, ds.roles.app, ds.password), application_name: 'tf-bench-verifier' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    // A token that outlives the loops; signed in this process as the application signs it.
    const token = literal(signContext(ds.key, tenant, { ttlSeconds: 3600 }));
    const setContext = `PERFORM pg_catalog.set_config(${literal(CONTEXT_SETTING)}, ${token}, true);`;
    await client.query('BEGIN');
    await client.query(`SELECT ${setContext.replace('PERFORM ', '')}`);
    const seen = (await client.query<{ t: string | null }>('SELECT tenantfence.current_tenant() AS t')).rows[0]?.t;
    if (seen !== tenant) throw new TenantfenceError(ErrorCodes.INTERNAL, 'The verifier did not accept the bench\'s signed context; the bench and the installed verifier disagree on the token.');
    const warmLoop = (body: string) => `DO $bench$ BEGIN FOR i IN 1..${loops.warm} LOOP ${body} END LOOP; END $bench$`;
    const warm = await perCall(client, loops.warm, warmLoop('PERFORM tenantfence.current_tenant();'), warmLoop('PERFORM NULL::text;'));
    await client.query('ROLLBACK');
    const firstLoop = (body: string) => `DO $bench$ BEGIN FOR i IN 1..${loops.first} LOOP ${setContext} ${body} COMMIT; END LOOP; END $bench$`;
    const first = await perCall(client, loops.first, firstLoop('PERFORM tenantfence.current_tenant();'), firstLoop('PERFORM NULL::text;'));
    return { warmMicros: warm, firstCallMicros: first };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * µs per iteration of `measured` above `baseline`: each run once untimed, then the fastest of three
 * timed runs, so a scheduling hiccup on a busy machine does not land in one side only.
 */
async function perCall(client: pg.Client, iterations: number, measured: string, baseline: string): Promise<number> {
  const time = async (text: string) => {
    await client.query(text);
    let best = Number.POSITIVE_INFINITY;
    for (let run = 0; run < 3; run++) {
      const started = performance.now();
      await client.query(text);
      best = Math.min(best, performance.now() - started);
    }
    return (best * 1000) / iterations;
  };
  return (await time(measured)) - (await time(baseline));
}
