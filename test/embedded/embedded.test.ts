/** The embedded server never outlives the process that started it, however that process ends. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { listening } from '../support/net.ts';
import { createInterface } from 'node:readline';

for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
  test(`the embedded server stops when its process gets ${signal}`, { timeout: 60_000 }, async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/embedded/child.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', () => reject(new Error('child exited before reporting')));
    });
    const { port } = JSON.parse(line) as { port: number };
    assert.equal(await listening(port), true);
    child.kill(signal);
    let up = true;
    for (let i = 0; i < 40 && up; i++) {
      await new Promise((r) => setTimeout(r, 500));
      up = await listening(port);
    }
    assert.equal(up, false, `server on port ${port} still running after ${signal}`);
  });
}
