/**
 * `npm run bench:firewall`: how long the firewall takes per statement on a realistic mix of agent
 * queries, against a bare `parseSync` of the same mix measured in the same run (issue 3 target:
 * p50 <= 60 µs). Each round times every statement once with each, interleaved, so drift in the
 * machine affects both the same way. Not a test: it prints numbers and fails only if the mix is
 * refused (then the numbers would measure the wrong path).
 */
import { parseSync } from 'libpg-query/wasm/index.js';
import { checkSql, loadFirewall, type FirewallOptions } from '../src/gateway/firewall.ts';

const MIX: Array<[FirewallOptions['mode'], string]> = [
  ['read', 'SELECT id, title, created_at FROM conversations ORDER BY created_at DESC LIMIT 20'],
  ['read', 'SELECT count(*) FROM messages WHERE conversation_id = $1'],
  ['read', "SELECT * FROM customers WHERE name ILIKE $1 OR email ILIKE $1 ORDER BY name LIMIT 50"],
  ['read', 'SELECT c.id, c.title, count(m.id) AS messages FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY c.id, c.title ORDER BY messages DESC LIMIT 10'],
  ['read', "SELECT date_trunc('day', created_at) AS day, count(*) AS n, sum(amount) AS revenue FROM orders WHERE created_at >= now() - interval '30 days' GROUP BY 1 ORDER BY 1"],
  ['read', "WITH recent AS (SELECT customer_id, sum(amount) AS total FROM orders WHERE created_at > now() - interval '90 days' GROUP BY customer_id) SELECT c.name, r.total FROM recent r JOIN customers c ON c.id = r.customer_id ORDER BY r.total DESC LIMIT 10"],
  ['read', 'SELECT id, amount, row_number() OVER (PARTITION BY customer_id ORDER BY created_at DESC) AS rn FROM orders'],
  ['read', "SELECT data->>'status' AS status, count(*) FROM events WHERE data @> '{\"type\": \"signup\"}'::jsonb GROUP BY 1"],
  ['read', 'SELECT o.id, o.amount, p.paid_at FROM orders o LEFT JOIN payments p ON p.order_id = o.id WHERE o.customer_id = $1 AND o.created_at BETWEEN $2 AND $3'],
  ['read', 'SELECT * FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE country = $1) AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = orders.id)'],
  ['read', 'SELECT DISTINCT ON (customer_id) customer_id, id, created_at FROM orders ORDER BY customer_id, created_at DESC'],
  ['read', "SELECT CASE WHEN amount >= 1000 THEN 'large' WHEN amount >= 100 THEN 'medium' ELSE 'small' END AS bucket, count(*) FROM orders GROUP BY 1"],
  ['read', 'SELECT c.id, last.body FROM conversations c LEFT JOIN LATERAL (SELECT body FROM messages m WHERE m.conversation_id = c.id ORDER BY m.created_at DESC LIMIT 1) last ON true LIMIT 20'],
  ['read', "SELECT id, 'order' AS kind, created_at FROM orders UNION ALL SELECT id, 'refund', created_at FROM refunds ORDER BY created_at DESC LIMIT 20"],
  ['read', 'SELECT id, title FROM docs WHERE to_tsvector(\'english\', body) @@ websearch_to_tsquery(\'english\', $1) LIMIT 20'],
  ['read', 'SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) AS median, avg(amount)::numeric(10,2) AS mean FROM orders'],
  ['read', 'SELECT t.tag, count(*) FROM notes n CROSS JOIN LATERAL unnest(n.tags) AS t(tag) GROUP BY t.tag ORDER BY 2 DESC LIMIT 10'],
  ['write', 'INSERT INTO notes (id, conversation_id, body) VALUES (gen_random_uuid(), $1, $2) RETURNING id, created_at'],
  ['write', "UPDATE orders SET status = 'shipped', updated_at = now() WHERE id = $1 RETURNING id, status"],
  ['write', "DELETE FROM drafts WHERE updated_at < now() - interval '30 days' RETURNING id"],
];

const ROUNDS = Number(process.env.ROUNDS ?? 2000);
const WARMUP = 300;

await loadFirewall();
for (const [mode, sql] of MIX) {
  const verdict = checkSql(sql, { mode });
  if (!verdict.ok) throw new Error(`the mix must be accepted, but this was refused (${verdict.message}): ${sql}`);
}

const firewall: number[] = [];
const parser: number[] = [];
for (let round = 0; round < WARMUP + ROUNDS; round += 1) {
  for (const [mode, sql] of MIX) {
    const t0 = process.hrtime.bigint();
    parseSync(sql);
    const t1 = process.hrtime.bigint();
    checkSql(sql, { mode });
    const t2 = process.hrtime.bigint();
    if (round >= WARMUP) {
      parser.push(Number(t1 - t0) / 1000);
      firewall.push(Number(t2 - t1) / 1000);
    }
  }
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
};
const row = (name: string, values: number[]) =>
  `${name.padEnd(22)} p50 ${quantile(values, 0.5).toFixed(1).padStart(6)} µs   p99 ${quantile(values, 0.99).toFixed(1).padStart(6)} µs`;

console.log(`firewall benchmark: ${MIX.length} statements x ${ROUNDS} rounds, node ${process.version}`);
console.log(row('parseSync (bare)', parser));
console.log(row('checkSql (firewall)', firewall));
console.log(
  `ratio checkSql/parseSync   p50 ${(quantile(firewall, 0.5) / quantile(parser, 0.5)).toFixed(2)}x   p99 ${(quantile(firewall, 0.99) / quantile(parser, 0.99)).toFixed(2)}x`,
);
console.log(`target p50 <= 60 µs: ${quantile(firewall, 0.5) <= 60 ? 'met' : 'NOT met'}`);
