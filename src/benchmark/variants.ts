/**
 * What is measured: four requests (Q1-Q4) under four ways of isolating tenants (V0-V3). The SQL
 * text is the same for every variant except that V0, which has no RLS, adds the application's own
 * `tenant_id = $n` filter; each variant's role points the unqualified table name at its own copy
 * (dataset.ts), so no variant pays for a longer statement or a different plan shape.
 *
 * Round trips per request: V0 1; V1 4 (BEGIN, set_config, the query, COMMIT: the recipe as
 * written, one await per statement on an ordinary pool); V2 `tenantQuery` 1 (the context, the
 * statement and the reset as one implicit transaction); V3 `withTenant` on a pipelining pool 2
 * (BEGIN and the context with the query, then the end and the reset).
 */
import type pg from 'pg';
import { tenantQuery, withTenant } from '../adapters/pg.ts';
import type { Dataset, Pick } from './dataset.ts';

export const QUERIES = ['Q1', 'Q2', 'Q3', 'Q4'] as const;
export type QueryId = (typeof QUERIES)[number];
export const VARIANTS = ['V0', 'V1', 'V2', 'V3'] as const;
export type Variant = (typeof VARIANTS)[number];

export const QUERY_NAMES: Record<QueryId, string> = {
  Q1: "a tenant's latest 20 rows",
  Q2: "count of a tenant's rows",
  Q3: 'point lookup by id',
  Q4: 'insert one row',
};

export const VARIANT_NAMES: Record<Variant, string> = {
  V0: 'app-layer WHERE, no RLS',
  V1: 'seed recipe (GUC policy)',
  V2: 'tenantQuery',
  V3: 'withTenant, one query',
};

/** Round trips per request (the header above); reported with the result. */
export const ROUND_TRIPS: Record<Variant, number> = { V0: 1, V1: 4, V2: 1, V3: 2 };

/** The backend pools' application names, for server CPU (server-cpu.ts). */
export const APPLICATION_NAMES: Record<Variant, string> = { V0: 'tf-bench-v0', V1: 'tf-bench-v1', V2: 'tf-bench-v2', V3: 'tf-bench-v3' };

interface Shape {
  /** V0's text: the tenant filter written by the application. */
  readonly filtered: string;
  /** V1-V3's text: RLS filters. */
  readonly fenced: string;
  filteredArgs(pick: Pick): unknown[];
  fencedArgs(pick: Pick): unknown[];
}

const COLUMNS = 'id, agent_id, transcript, created_at';
const AGENT = '00000000-0000-4000-8000-00000000a6e7';
const insertArgs = (p: Pick) => [p.tenant, AGENT, 'inserted by tenantfence bench'];

export const SHAPES: Record<QueryId, Shape> = {
  Q1: {
    filtered: `SELECT ${COLUMNS} FROM conversations WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 20`,
    fenced: `SELECT ${COLUMNS} FROM conversations ORDER BY created_at DESC LIMIT 20`,
    filteredArgs: (p) => [p.tenant],
    fencedArgs: () => [],
  },
  Q2: {
    filtered: 'SELECT count(*) AS n FROM conversations WHERE tenant_id = $1',
    fenced: 'SELECT count(*) AS n FROM conversations',
    filteredArgs: (p) => [p.tenant],
    fencedArgs: () => [],
  },
  Q3: {
    filtered: `SELECT ${COLUMNS} FROM conversations WHERE id = $1 AND tenant_id = $2`,
    fenced: `SELECT ${COLUMNS} FROM conversations WHERE id = $1`,
    filteredArgs: (p) => [p.id, p.tenant],
    fencedArgs: (p) => [p.id],
  },
  // The tenant column is written by the application in every variant: RLS checks it, never fills it.
  Q4: {
    filtered: 'INSERT INTO conversations (tenant_id, agent_id, transcript) VALUES ($1, $2, $3)',
    fenced: 'INSERT INTO conversations (tenant_id, agent_id, transcript) VALUES ($1, $2, $3)',
    filteredArgs: insertArgs,
    fencedArgs: insertArgs,
  },
};

export type Rows = readonly Record<string, unknown>[];
export type RunQuery = (query: QueryId, pick: Pick) => Promise<Rows>;

export function variantRunners(ds: Dataset, poolSize: number): Record<Variant, RunQuery> {
  const v0 = ds.pool(ds.roles.plain, APPLICATION_NAMES.V0, { max: poolSize });
  const v1 = ds.pool(ds.roles.naive, APPLICATION_NAMES.V1, { max: poolSize });
  const v2 = ds.pool(ds.roles.app, APPLICATION_NAMES.V2, { max: poolSize, pipeline: true } as pg.PoolConfig);
  const v3 = ds.pool(ds.roles.app, APPLICATION_NAMES.V3, { max: poolSize, pipeline: true } as pg.PoolConfig);
  return {
    V0: async (q, pick) => (await v0.query(SHAPES[q].filtered, SHAPES[q].filteredArgs(pick))).rows,
    V1: async (q, pick) => {
      const client = await v1.connect();
      let failed: Error | undefined;
      try {
        await client.query('BEGIN');
        await client.query("SELECT set_config('app.tenant_id', $1, true)", [pick.tenant]);
        const { rows } = await client.query(SHAPES[q].fenced, SHAPES[q].fencedArgs(pick));
        await client.query('COMMIT');
        return rows;
      } catch (error) {
        failed = error as Error;
        throw error;
      } finally {
        client.release(failed);
      }
    },
    V2: async (q, pick) => (await tenantQuery(v2, pick.tenant, SHAPES[q].fenced, SHAPES[q].fencedArgs(pick), { key: ds.key })).rows,
    V3: async (q, pick) =>
      (await withTenant(v3, pick.tenant, (client) => client.query(SHAPES[q].fenced, SHAPES[q].fencedArgs(pick)), { key: ds.key })).rows,
  };
}
