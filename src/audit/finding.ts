/**
 * The audit's data: a rule (one `rules/<id>.sql` + `rules/<id>.md` pair) and the findings it
 * returns. Every finding carries the same fields (splinter's contract) so every format and the
 * baseline read them the same way.
 */
import { createHash } from 'node:crypto';

export const LEVELS = ['error', 'warn', 'info'] as const;
export type Level = (typeof LEVELS)[number];
export type Category = 'security' | 'performance';
/**
 * `role`: the rule judges the app and agent roles themselves (attributes, memberships, what they
 * own or may read); `tenantfence init` refuses roles such a rule reports as an error. `table`: the
 * rest (the default).
 */
export type Scope = 'table' | 'role';

/**
 * What a finding exposes, worst first; reports order by level, then by this (RLS off first):
 *   table      every tenant's rows of a table, to every role with a grant (row level security off)
 *   rows       other tenants' rows, to whoever takes a path around the policy
 *   writes     rows written into another tenant
 *   values     whether other tenants' values exist, or how many rows they have (oracles, counters)
 *   hardening  nothing today: cost, or a policy easy to widen by accident
 * A rule without `exposes` in its front matter counts as `rows`.
 */
export const EXPOSURES = ['table', 'rows', 'writes', 'values', 'hardening'] as const;
export type Exposure = (typeof EXPOSURES)[number];

export interface Rule {
  /** Stable id: CI configs and baselines name it, so it never changes. */
  readonly id: string;
  readonly title: string;
  readonly level: Level;
  readonly category: Category;
  readonly scope: Scope;
  readonly exposes: Exposure;
  /** The Markdown body of `rules/<id>.md` (why it matters, how to fix). */
  readonly doc: string;
  /** The rule's query; it may use the CTEs of `prelude.sql`. */
  readonly sql: string;
}

export interface Finding {
  readonly rule: string;
  readonly title: string;
  readonly level: Level;
  readonly category: Category;
  readonly exposes: Exposure;
  /** `schema.name` of the table, view or function, or the role name. */
  readonly object: string;
  readonly detail: string;
  /** SQL that removes the finding, where one exists (comments mark the judgment calls). */
  readonly remediation: string | null;
  /** Stable across runs and servers: a hash of rule, object and the rule's key, never an OID. */
  readonly fingerprint: string;
}

export function fingerprint(rule: string, object: string, key: string): string {
  return createHash('sha256').update(`${rule}\0${object}\0${key}`).digest('hex').slice(0, 32);
}

export function levelRank(level: Level): number {
  return LEVELS.indexOf(level);
}

/** Deterministic order: most severe first, then what it exposes, rule id, object, detail, fingerprint. */
export function compareFindings(a: Finding, b: Finding): number {
  return (
    levelRank(a.level) - levelRank(b.level) ||
    EXPOSURES.indexOf(a.exposes) - EXPOSURES.indexOf(b.exposes) ||
    cmp(a.rule, b.rule) ||
    cmp(a.object, b.object) ||
    cmp(a.detail, b.detail) ||
    cmp(a.fingerprint, b.fingerprint)
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
