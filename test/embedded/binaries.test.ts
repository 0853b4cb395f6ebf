/** Root imports JavaScript from the shared binary cache only when nobody else can have written it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trusted } from '../../src/embedded/binaries.ts';

test('the cache is trusted only as a root-owned real directory nobody else can write', { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tf-trust-'));
  try {
    const [good, open, foreign, link] = ['good', 'open', 'foreign', 'link'].map((n) => join(dir, n)) as [string, string, string, string];
    for (const d of [good, open, foreign]) mkdirSync(d, { mode: 0o755 });
    chmodSync(open, 0o777);
    chownSync(foreign, 65534, 65534); // nobody
    symlinkSync(good, link);
    assert.equal(trusted(good), true);
    assert.equal(trusted(open), false);
    assert.equal(trusted(foreign), false);
    assert.equal(trusted(link), false);
    assert.equal(trusted(join(dir, 'missing')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
