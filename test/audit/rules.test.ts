import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadRules } from '../../src/audit/registry.ts';
import { ruleCaseTests } from './support.ts';
import { tableCases } from './cases/tables.ts';
import { policyCases } from './cases/policies.ts';
import { roleCases } from './cases/roles.ts';
import { isolationCases, privilegeCases } from './cases/isolation.ts';

const cases = [...tableCases, ...policyCases, ...roleCases, ...isolationCases, ...privilegeCases];

/** Issue 4's ids and levels. CI configs and baselines depend on them: changing one is a break. */
const ISSUE_RULES: Record<string, 'error' | 'warn' | 'info'> = {
  'rls-disabled': 'error', 'rls-not-forced': 'error', 'policy-write-check-not-tenant': 'error',
  'policy-always-true': 'error', 'policy-tamperable-context': 'error', 'policy-bypass-guc': 'error',
  'app-role-superuser': 'error', 'app-role-bypassrls': 'error', 'app-role-owns-table': 'error',
  'view-bypasses-rls': 'error', 'matview-over-tenant-table': 'error', 'security-definer-exposed': 'error',
  'security-definer-search-path': 'error', 'global-unique-on-tenant-table': 'error', 'fk-without-tenant': 'error',
  'agent-role-dangerous-privilege': 'error', 'role-can-read-other-sessions': 'error',
  'trigger-security-definer-on-tenant-table': 'error',
  'policy-per-row-function': 'warn', 'policy-type-mismatch': 'warn', 'no-tenant-leading-index': 'warn',
  'policy-empty-string-cast': 'warn', 'multiple-permissive-policies': 'warn',
  'policy-missing-with-check': 'info', 'rls-enabled-no-policy': 'info', 'sequence-shared-across-tenants': 'info',
};

/** Rules added after issue 4 (the review of the audit). Pinned the same way. */
const ADDED_RULES: Record<string, 'error' | 'warn' | 'info'> = {
  'policy-read-not-tenant': 'error', 'app-role-createrole': 'error', 'signing-key-exposed': 'error',
  // issue 11
  'tenant-data-without-tenant-column': 'error', 'policy-pin-writable': 'error', 'policy-immutable-context': 'error',
  'policy-function-shadowable': 'error', 'role-replication': 'error', 'leakproof-function': 'error',
  'foreign-data-access': 'error', 'change-feed-exposes-tenant-rows': 'error', 'default-privileges-open-tables': 'warn',
  'server-rls-cve': 'error', 'app-role-dangerous-privilege': 'error',
  // issue 9: the audited admin path
  'role-reaches-admin': 'error',
  // issue 10
  'session-functions-exposed': 'warn', 'fenced-role-settings': 'warn',
};

test('the registry holds the issue\'s rule ids at their levels, and docs/audit.md lists each one', () => {
  const rules = loadRules();
  assert.deepEqual(rules.map((r) => r.id).sort(), Object.keys({ ...ISSUE_RULES, ...ADDED_RULES }).sort(), 'no rule appears or disappears unpinned');
  for (const [id, level] of Object.entries({ ...ISSUE_RULES, ...ADDED_RULES })) {
    assert.equal(rules.find((r) => r.id === id)?.level, level, id);
  }
  const docs = readFileSync(new URL('../../docs/audit.md', import.meta.url), 'utf8');
  assert.deepEqual(rules.filter((r) => !docs.includes(`| \`${r.id}\` |`)).map((r) => r.id), []);
});

test('every rule in the registry has at least one case here', () => {
  const covered = new Set(cases.map((c) => c.rule));
  assert.deepEqual(loadRules().map((r) => r.id).filter((id) => !covered.has(id)), []);
});

ruleCaseTests(cases);
