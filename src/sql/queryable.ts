/**
 * The structural shape tenantfence needs from a connection (Kysely's habit): node-postgres
 * clients and pools satisfy it without tenantfence importing `pg` here.
 */
export interface QueryResultLike<R> {
  readonly rows: R[];
  readonly rowCount: number | null;
}

export interface Queryable {
  query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<QueryResultLike<R>>;
}
