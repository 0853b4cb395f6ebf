/**
 * The long firewall fuzz (issue 10, item 6): `node --import tsx scripts/fuzz-firewall.ts
 * [--inputs 1000000] [--seed N]` against DATABASE_URL (or an embedded PostgreSQL). Builds the
 * red-team fixture, fuzzes in chunks (a fresh agent connection per chunk), prints progress to
 * stderr and one JSON line of totals to stdout: inputs, crashes, hangs, accepted, executed,
 * leaks, duration. Exit 1 on any crash, hang or leak (the findings are printed).
 * Run it at low priority on a shared machine: `nice -n 19 node --import tsx scripts/fuzz-firewall.ts`.
 */
import { parseArgs } from 'node:util';
import { openDatabase } from '../src/embedded/database.ts';
import { loadFirewall } from '../src/gateway/firewall.ts';
import { firewallRelations, loadServerProfile } from '../src/gateway/server-profile.ts';
import { createFixture } from '../src/redteam/fixture.ts';
import { fuzz, type FuzzStats } from '../src/redteam/fuzz.ts';

const { values } = parseArgs({ options: { inputs: { type: 'string' }, seed: { type: 'string' } } });
const total = Number(values.inputs ?? 1_000_000);
const seed = Number(values.seed ?? 1);
const CHUNK = 50_000;

const target = await openDatabase();
const fixture = await createFixture(target.url);
const started = performance.now();
const sum: FuzzStats = { inputs: 0, crashes: 0, hangs: 0, accepted: 0, executed: 0, leaks: 0, dbErrors: 0, reloading: 0, findings: [] };
try {
  await loadFirewall();
  const agent = fixture.pool(fixture.roles.agent, { max: 1 });
  const profile = await loadServerProfile(agent);
  const relations = firewallRelations(profile);
  const firewall = { read: { mode: 'read' as const, server: profile, relations }, write: { mode: 'write' as const, server: profile, relations } };
  for (let chunk = 0; sum.inputs < total; chunk++) {
    const stats = await fuzz({ seed: seed * 100_003 + chunk, inputs: Math.min(CHUNK, total - sum.inputs), fixture, agent, firewall, searchPath: profile.searchPath });
    for (const k of ['inputs', 'crashes', 'hangs', 'accepted', 'executed', 'leaks', 'dbErrors', 'reloading'] as const) sum[k] += stats[k];
    sum.findings.push(...stats.findings.slice(0, 20));
    const s = (performance.now() - started) / 1000;
    process.stderr.write(`${sum.inputs} inputs, ${sum.accepted} accepted, ${sum.crashes} crashes, ${sum.hangs} hangs, ${sum.leaks} leaks, ${s.toFixed(0)} s\n`);
  }
} finally {
  await fixture.drop();
  await target.close();
}
const { findings, ...totals } = sum;
process.stdout.write(`${JSON.stringify({ seed, ...totals, durationSeconds: Math.round((performance.now() - started) / 1000) })}\n`);
for (const f of findings) process.stdout.write(`${JSON.stringify(f)}\n`);
process.exitCode = sum.crashes + sum.hangs + sum.leaks > 0 ? 1 : 0;
