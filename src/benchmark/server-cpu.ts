/**
 * The CPU a set of backends has used, read from /proc when the server runs on this machine:
 * pg_stat_activity names the backends (by application_name), /proc/<pid>/schedstat has their time
 * on a CPU. A pid counts only if its process title names the bench's own database, so a remote
 * server's pids never get matched to unrelated local processes.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Queryable } from '../sql/queryable.ts';

export interface CpuProbe {
  /** CPU µs per backend pid so far, or undefined when a backend is not visible here. */
  sample(): Promise<ReadonlyMap<number, number> | undefined>;
}

export function backendCpu(admin: Queryable, database: string, applicationName: string): CpuProbe {
  return {
    async sample() {
      const { rows } = await admin.query<{ pid: number }>(
        'SELECT pid FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND application_name = $2',
        [database, applicationName],
      );
      const cpu = new Map<number, number>();
      for (const { pid } of rows) {
        const micros = processCpu(pid, database);
        if (micros === undefined) return undefined;
        cpu.set(pid, micros);
      }
      return cpu;
    },
  };
}

function processCpu(pid: number, database: string): number | undefined {
  try {
    const title = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!title.startsWith('postgres') || !title.includes(` ${database} `)) return undefined;
    // schedstat's first field is the time on a CPU in nanoseconds; stat's utime + stime (fields 14
    // and 15, after the parenthesised name) count clock ticks, too coarse for a 100 ms slice.
    const schedstat = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ');
    if (schedstat[0] && /^[0-9]+$/.test(schedstat[0])) return Number(schedstat[0]) / 1000;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / clockTicks();
  } catch {
    return undefined;
  }
}

let hz: number | undefined;
function clockTicks(): number {
  if (hz === undefined) {
    try {
      hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      hz = 100;
    }
  }
  return hz;
}
