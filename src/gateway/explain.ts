/**
 * The statement the explain tool runs. COSTS OFF because row estimates count every tenant's rows
 * (statistics are not filtered by RLS); the firewall checks this exact text.
 *
 * The rest of what surrounds an agent's statement (the context, the pinned settings, the end and
 * the session reset) is the fence engine's: src/context/fence.ts and src/sql/session.ts. The
 * gateway pins `standard_conforming_strings = on` through the engine (the firewall's parser assumes
 * it: with it off, `SELECT '\' AS a, ' , pg_sleep(2)::text AS b --'` is two literals to the
 * firewall and a pg_sleep call to the server) and its own search_path (server-profile.ts).
 */
export function explainText(sql: string): string {
  return `EXPLAIN (COSTS OFF) ${sql}`;
}
