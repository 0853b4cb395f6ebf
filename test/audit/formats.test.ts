/**
 * The machine formats against their consumers: SARIF against the SARIF 2.1.0 JSON schema (the
 * copy shipped in @microsoft/jest-sarif, a draft-04 schema), HTML in a real headless Chromium
 * (Debian's `chromium`, which .ci/run installs), reading what it renders.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import AjvModule from 'ajv-draft-04';
import addFormatsModule from 'ajv-formats';
import { chromium } from 'playwright-core';
import { audit } from '../../src/cli/commands/audit.ts';
import type { TestDatabase } from '../support/db.ts';
import { fencedBase, withDatabase } from './support.ts';

const require = createRequire(import.meta.url);
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** A database with findings of every level, on tables and on a function. */
async function pitfalls(db: TestDatabase): Promise<void> {
  await fencedBase(db);
  await db.admin.query(`
    CREATE TABLE open_orders (tenant_id uuid NOT NULL, n bigserial PRIMARY KEY, note text);
    CREATE TABLE "Odd <b>name</b>" (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id));
    ALTER TABLE "Odd <b>name</b>" ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
    CREATE POLICY loose ON items FOR SELECT USING (tenant_id = current_setting('app.tenant_id')::uuid);
    CREATE FUNCTION public.peek() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$ SELECT 1::bigint $$;`);
}

const options = (db: TestDatabase) => ({ db: db.admin, appRole: db.roles.app, agentRole: db.roles.agent, databaseName: db.name });

test('SARIF output validates against the SARIF 2.1.0 schema', () =>
  withDatabase(async (db) => {
    await pitfalls(db);
    const result = await audit({ ...options(db), format: 'sarif' });
    const log = JSON.parse(result.stdout);
    const schema = JSON.parse(readFileSync(require.resolve('@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json'), 'utf8'));
    // unicodeRegExp: false because the schema's `language` pattern has a stray `]` that JavaScript
    // rejects in unicode mode (a known defect of this schema copy; it is valid without the u flag).
    // CommonJS packages: under NodeNext their constructors sit on `.default`.
    const Ajv = (AjvModule as unknown as { default: typeof AjvModule.default }).default;
    const addFormats = (addFormatsModule as unknown as { default: typeof addFormatsModule.default }).default;
    const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false });
    addFormats(ajv);
    const validate = ajv.compile(schema);
    const valid: boolean = validate(log); // kept out of the assert: a type guard would narrow `log` to unknown
    assert.ok(valid, JSON.stringify(validate.errors, null, 2));
    const results = log.runs[0].results as Array<{ ruleId: string; level: string; ruleIndex: number }>;
    assert.equal(results.length, result.findings.length);
    assert.ok(results.some((r) => r.level === 'error') && results.some((r) => r.level === 'warning') && results.some((r) => r.level === 'note'));
    for (const r of results) assert.equal(log.runs[0].tool.driver.rules[r.ruleIndex].id, r.ruleId);
    // GitHub code scanning needs a physical location: a relative path (no scheme), line 1.
    type Location = { physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number } }; logicalLocations: Array<{ fullyQualifiedName: string }> };
    const locations = (log.runs[0].results as Array<{ locations: Location[] }>).map((r) => r.locations[0]!);
    for (const l of locations) {
      assert.match(l.physicalLocation.artifactLocation.uri, /^database\/[^:]+$/);
      assert.equal(l.physicalLocation.region.startLine, 1);
    }
    const uris = new Map(locations.map((l) => [l.logicalLocations[0]!.fullyQualifiedName, l.physicalLocation.artifactLocation.uri]));
    assert.equal(uris.get('public.Odd <b>name</b>'), 'database/public/Odd%20%3Cb%3Ename%3C%2Fb%3E');
    assert.equal(uris.get('public.peek()'), 'database/public/peek()');
    assert.equal(uris.get('public.items'), 'database/public/items');
  }),
);

test('the HTML report renders in Chromium: isolation map coloured by status, findings with remediation', () =>
  withDatabase(async (db) => {
    assert.ok(existsSync(CHROMIUM), `Chromium is required at ${CHROMIUM} (apt-get install -y chromium; .ci/run does this)`);
    await pitfalls(db);
    const result = await audit({ ...options(db), format: 'html' });
    const dir = mkdtempSync(join(tmpdir(), 'tf-html-'));
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const file = join(dir, 'audit.html');
      writeFileSync(file, result.stdout);
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on('request', (r) => void (r.url().startsWith('file:') || requests.push(r.url())));
      await page.goto(pathToFileURL(file).href);
      assert.deepEqual(requests, [], 'self-contained: no network request');

      assert.equal(await page.title(), `tenantfence audit: ${db.name}`);
      const summary = await page.locator('#summary').innerText();
      assert.match(summary, /^\d+ errors, \d+ warnings?, \d+ info on 3 tenant tables\.$/);

      const rows = await page.locator('#map tbody tr').evaluateAll((trs) =>
        trs.map((tr) => ({
          table: tr.querySelector('th')!.textContent,
          cells: [...tr.querySelectorAll('td')].map((td) => (td as HTMLElement).innerText),
          colours: [...tr.querySelectorAll('td')].map((td) => getComputedStyle(td).backgroundColor),
        })),
      );
      // Code-point order (COLLATE "C"), the same on every server whatever its locale.
      assert.deepEqual(rows.map((r) => r.table), ['public.Odd <b>name</b>', 'public.items', 'public.open_orders'], 'names are escaped, not markup');
      const [odd, items, open] = rows as [typeof rows[0], typeof rows[0], typeof rows[0]];
      assert.deepEqual(open.cells.slice(0, 4), ['no: RLS off', 'no', 'none', 'no']);
      assert.deepEqual(items.cells.slice(0, 3), ['yes', 'yes', 'loose, tenantfence_isolation']);
      assert.match(odd.cells[0]!, /RLS on, no verified-tenant policy/);
      const green = 'rgb(218, 251, 225)';
      const red = 'rgb(255, 235, 233)';
      assert.equal(items.colours[0], green, 'protected cell is green');
      assert.equal(open.colours[0], red, 'unprotected cell is red');
      assert.equal(open.colours[4], red, 'a table with errors has a red findings cell');
      assert.match(open.cells[4]!, /\d+ errors?/);

      const fixes = await page.locator('div.fix[data-rules~="rls-disabled"] pre.fix').allInnerTexts();
      assert.deepEqual(fixes, result.findings.filter((f) => f.rule === 'rls-disabled').map((f) => f.remediation));
      // when, where and on what: the time is in a <time> a test can leave out of a comparison
      assert.match(await page.locator('#meta').innerText(), new RegExp(`^database ${db.name}, PostgreSQL \\d+\\.\\d+.*, \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC$`));
      // grouped by object, worst first: the table with RLS off comes before everything else
      const groups = await page.locator('section.group').evaluateAll((ss) => ss.map((s) => s.getAttribute('data-object')));
      assert.equal(groups[0], 'public.open_orders');
      assert.deepEqual(groups, [...new Set(result.findings.map((f) => f.object))]);
      const rendered = await page.locator('body').innerText();
      assert.match(rendered, /public\.peek\(\)\s+error security-definer-exposed/);
    } finally {
      await browser.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }),
);
