/**
 * How result values and column types leave the gateway. Values are kept as Postgres prints them
 * wherever JavaScript would change them: timestamps and dates stay strings (a `Date` drops
 * microseconds and reinterprets `timestamp` in the gateway's time zone), bytea stays `\x…` hex
 * (a Buffer serialises to a byte array), bigint and numeric stay strings (pg's default: no
 * precision loss). JSON is parsed, booleans and 32-bit numbers become JSON values.
 */
import pg from 'pg';

const RAW = new Set([17, 1082, 1083, 1114, 1184, 1266, 1186, 1001, 1182, 1115, 1185, 1183, 1270, 1187]);
const identity = (value: string): string => value;

export const valueTypes = {
  getTypeParser(oid: number, format?: string): (value: string) => unknown {
    if (RAW.has(oid)) return identity;
    return pg.types.getTypeParser(oid, (format ?? 'text') as 'text') as (value: string) => unknown;
  },
};

/** OID → type name for every type in the database (format_type's spelling: `uuid`, `text[]`). */
export async function typeNames(pool: Pick<pg.Pool, 'query'>): Promise<Map<number, string>> {
  const { rows } = await pool.query<{ oid: number; name: string }>({
    text: 'SELECT oid::int AS oid, format_type(oid, NULL) AS name FROM pg_catalog.pg_type',
    values: [],
    queryMode: 'extended',
  } as pg.QueryConfig);
  return new Map(rows.map((r) => [r.oid, r.name]));
}
