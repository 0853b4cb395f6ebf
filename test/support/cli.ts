/** The CLI as users run it: a child process, its exit code, its stdout and stderr. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface CliResult {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

const ARGS = ['--import', 'tsx', 'src/cli/bin.ts'];

/** `env` is added to this process's environment; an undefined value removes a variable. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}): CliResult {
  const r = spawnSync(process.execPath, [...ARGS, ...args], {
    encoding: 'utf8',
    env: { ...process.env, TENANTFENCE_SECRET: undefined, ...env },
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Starts a long-running command (serve, mcp); `exited` settles with its exit code. */
export interface RunningCli {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** Settles with the first stderr line that matches; rejects if the process exits first. */
  stderrLine(pattern: RegExp): Promise<string>;
  /** Everything written to stderr so far. */
  stderr(): string;
}

export function spawnCli(args: string[], env: Record<string, string | undefined>): RunningCli {
  const child = spawn(process.execPath, [...ARGS, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  // 'close', not 'exit': stderr has been read to its end by then.
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    lines.push(line);
    for (const w of waiters.splice(0)) w();
  });
  const stderrLine = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const hit = lines.find((l) => pattern.test(l));
        if (hit !== undefined) return resolve(hit);
        waiters.push(check);
      };
      exited.then((code) => reject(new Error(`exited ${code} before printing ${pattern}: ${lines.join('\n')}`)));
      check();
    });
  return { child, exited, stderrLine, stderr: () => lines.map((l) => `${l}\n`).join('') };
}
