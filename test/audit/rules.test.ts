import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadRules } from '../../src/audit/registry.ts';
import { ruleCaseTests } from './support.ts';
import { tableCases } from './cases/tables.ts';
import { policyCases } from './cases/policies.ts';
import { roleCases } from './cases/roles.ts';

const cases = [...tableCases, ...policyCases, ...roleCases];

test('every rule in the registry has at least one case here', () => {
  const covered = new Set(cases.map((c) => c.rule));
  assert.deepEqual(loadRules().map((r) => r.id).filter((id) => !covered.has(id)), []);
});

ruleCaseTests(cases);
