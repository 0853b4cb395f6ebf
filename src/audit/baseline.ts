/**
 * Baselines: accepted findings, by fingerprint, in a JSON file meant to be committed. The file also
 * names each finding's rule and object so a reviewer can read what was accepted; only the
 * fingerprint is matched. Sorted, so regenerating it gives a readable diff.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { TenantfenceError, ErrorCodes } from '../errors.ts';
import type { Finding } from './finding.ts';

export const BASELINE_FORMAT = 'tenantfence-audit-baseline/1';

export interface BaselineEntry {
  readonly fingerprint: string;
  readonly rule: string;
  readonly object: string;
}

export function baselineOf(findings: readonly Finding[]): { format: string; findings: BaselineEntry[] } {
  const entries = new Map(findings.map((f) => [f.fingerprint, { fingerprint: f.fingerprint, rule: f.rule, object: f.object }]));
  return { format: BASELINE_FORMAT, findings: [...entries.values()].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1)) };
}

export function writeBaseline(path: string, findings: readonly Finding[]): number {
  const baseline = baselineOf(findings);
  try {
    writeFileSync(path, `${JSON.stringify(baseline, null, 2)}\n`);
  } catch (error) {
    throw new TenantfenceError(ErrorCodes.USAGE, `Cannot write the baseline to ${path}; check the folder exists and is writable.`, { cause: error });
  }
  return baseline.findings.length;
}

export function readBaseline(path: string): Set<string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TenantfenceError(ErrorCodes.USAGE, `Cannot read the baseline ${path} as JSON; create it with --write-baseline.`, { cause: error });
  }
  const findings = (parsed as { format?: unknown; findings?: unknown })?.findings;
  if ((parsed as { format?: unknown })?.format !== BASELINE_FORMAT || !Array.isArray(findings)
      || !findings.every((f) => typeof (f as BaselineEntry)?.fingerprint === 'string')) {
    throw new TenantfenceError(ErrorCodes.USAGE, `${path} is not a tenantfence audit baseline; create it with --write-baseline.`);
  }
  return new Set(findings.map((f: BaselineEntry) => f.fingerprint));
}
