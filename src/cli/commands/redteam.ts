/**
 * `tenantfence redteam`: the attack corpus (src/redteam/corpus/*.jsonl) run as tenant A against
 * tenant B, judged on B's data (src/redteam/runner.ts). On a scratch fixture database by default
 * (through the gateway in-process, the MCP server and withTenant), or against a running gateway
 * with two tenants' tokens. Exit 1 on any leak.
 */
import { TenantfenceError, ErrorCodes } from '../../errors.ts';
import { loadFirewall } from '../../gateway/firewall.ts';
import { loadCorpus } from '../../redteam/corpus.ts';
import { fixtureTarget, remoteTarget } from '../../redteam/doors.ts';
import { createFixture } from '../../redteam/fixture.ts';
import { runCorpus, type RedteamResult } from '../../redteam/runner.ts';

export interface RedteamOptions {
  /** An admin connection string for the fixture (creates a database and roles, drops them after). */
  readonly url?: string | undefined;
  /** A running gateway to attack instead, with a JWT of tenant A and one of tenant B. */
  readonly gateway?: { readonly url: string; readonly tokenA: string; readonly tokenB: string };
  /** JSONL corpus files instead of the shipped corpus. */
  readonly corpus?: readonly string[];
}

export async function redteam(options: RedteamOptions): Promise<RedteamResult> {
  const cases = loadCorpus(options.corpus);
  if (cases.length === 0) throw new TenantfenceError(ErrorCodes.USAGE, 'The corpus holds no case; pass a .jsonl file with at least one.');
  if (options.gateway) {
    const { url, tokenA, tokenB } = options.gateway;
    return runCorpus(await remoteTarget(url, tokenA, tokenB), cases);
  }
  await loadFirewall();
  const fixture = await createFixture(options.url);
  try {
    const target = await fixtureTarget(fixture);
    try {
      return await runCorpus(target, cases);
    } finally {
      await target.close();
    }
  } finally {
    await fixture.drop();
  }
}
