/// <reference lib="es2024.string" />
/**
 * The gateway's audit writer (issue 3, item 6). One record per statement the gateway was asked to
 * run (ran, failed or refused), appended to `tenantfence.audit_log` through
 * `tenantfence.audit_append(record, mac)` (DDL in src/sql/init.ts):
 * - signed with the tenantfence key, so agent SQL, which runs as the same role, cannot forge one;
 * - with the statement text or only its fingerprint (`redaction`); bind parameters never;
 * - for a write, inside the write's own transaction, just before COMMIT (`statement()`, run by the
 *   executor): the write and its record commit together or not at all;
 * - for a read, inside the read's own transaction, before the statement (`statement()` too, run
 *   by the executor, after which the transaction is read-only): the two commit together or not
 *   at all;
 * - for refusals and failures, on the audit pool after the agent's transaction has ended
 *   (`append()`), so nothing the statement does (an error, a rollback) can undo the record.
 * Every record must serialise into something audit_append accepts, whatever the statement text:
 * see `serialise`.
 */
import { createHash, createHmac } from 'node:crypto';
import type pg from 'pg';
import type { SigningKey } from '../context/token.ts';
import { AUDIT_MAC_PREFIX } from '../sql/init.ts';
import { withoutComments } from './firewall-parser.ts';

export type AuditVerdict = 'ok' | 'error' | 'rejected';
export type AuditRedaction = 'full' | 'fingerprint';

export interface AuditRecord {
  readonly requestId: string;
  readonly tenant: string;
  readonly principal: string | null;
  readonly fingerprint: string | null;
  readonly statement: string | null;
  readonly verdict: AuditVerdict;
  /** The firewall's reason for a refusal. */
  readonly reason?: string;
  readonly rows?: number;
  readonly durationMs?: number;
  /** The TF_ code returned to the client, and the SQLSTATE behind it. */
  readonly code?: string;
  readonly sqlstate?: string;
}

/** audit_append refuses a record longer than this (`length(record) > 262144`, src/sql/init.ts). */
const MAX_RECORD_CHARS = 262_144;
const MAX_PRINCIPAL_CHARS = 1024;
/**
 * What the statement may take of the record once serialised: the rest is the principal (at most
 * 6 characters per UTF-16 unit) and short fields of our own (ids, codes, numbers), well under 16 KiB.
 */
const STATEMENT_BUDGET = MAX_RECORD_CHARS - 6 * MAX_PRINCIPAL_CHARS - 16 * 1024;

/**
 * Records of statements that changed nothing (reads, refusals, errors; a committed write's record
 * is committed with the write) are committed with synchronous_commit off, which spares a WAL flush
 * per read; a database crash can lose the last moments of them (at most 3 x wal_writer_delay).
 * set_config(..., true) applies to the commit of the transaction it runs in.
 */
const RELAXED = "SELECT pg_catalog.set_config('synchronous_commit', 'off', true), tenantfence.audit_append($1, $2)";
const IN_TRANSACTION = 'SELECT tenantfence.audit_append($1, $2)';
/** Several records in one statement and one commit (the set_config runs once, in the FROM). */
const RELAXED_BATCH = `SELECT tenantfence.audit_append(t.r, t.m)
  FROM (SELECT pg_catalog.set_config('synchronous_commit', 'off', true)) AS s, pg_catalog.unnest($1::pg_catalog.text[], $2::pg_catalog.text[]) AS t(r, m)`;
/** Records per batch at most: a batch is one statement of at most this many 256 KiB records. */
const MAX_BATCH = 64;

interface Pending {
  readonly record: AuditRecord;
  readonly query: pg.QueryConfig;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class AuditLog {
  readonly #pool: Pick<pg.Pool, 'query'>;
  readonly #key: SigningKey;
  readonly #redaction: AuditRedaction;
  #queue: Pending[] = [];
  #draining = false;

  constructor(options: { pool: Pick<pg.Pool, 'query'>; key: SigningKey; redaction: AuditRedaction }) {
    this.#pool = options.pool;
    this.#key = options.key;
    this.#redaction = options.redaction;
  }

  /**
   * Appends a record on the audit pool and resolves once it is committed: the caller replies only
   * then ("no result without its record"). Records that arrive while a write is in flight go
   * together in the next one, one statement and one commit for all of them (group commit): at
   * concurrency 1 nothing waits, under load the per-record statement and commit are shared. If a
   * batch fails, each of its records is appended on its own (`#appendOne`), so one record the
   * database refuses cannot take the others with it.
   */
  append(record: AuditRecord): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ record, query: this.#query(RELAXED, record), resolve, reject });
      if (!this.#draining) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_BATCH);
        if (batch.length > 1) {
          const values = [batch.map((p) => p.query.values![0]), batch.map((p) => p.query.values![1])];
          const ok = await this.#pool.query({ text: RELAXED_BATCH, values, queryMode: 'extended' } as pg.QueryConfig).then(() => true, () => false);
          if (ok) {
            for (const p of batch) p.resolve();
            continue;
          }
        }
        await Promise.all(batch.map((p) => this.#appendOne(p.record).then(p.resolve, p.reject)));
      }
    } finally {
      this.#draining = false;
    }
  }

  /**
   * One record on its own. If the database refuses it (an error with a SQLSTATE), it is sent once
   * more without the statement text (`reason: statement_unloggable`), so no statement goes
   * unrecorded because of what its text contains; a lost connection is retried as it was. A
   * duplicate request id (23505) is not retried: that record is already there.
   */
  async #appendOne(record: AuditRecord): Promise<void> {
    try {
      await this.#pool.query(this.#query(RELAXED, record));
    } catch (error) {
      const sqlstate = (error as { code?: unknown }).code;
      if (sqlstate === '23505') throw error;
      const retry = typeof sqlstate === 'string' ? { ...record, statement: null, reason: 'statement_unloggable' } : record;
      await this.#pool.query(this.#query(RELAXED, retry));
    }
  }

  /**
   * The query that appends `record` inside the caller's own transaction: a write's, before COMMIT;
   * a read's, before the statement (the executor commits that one with synchronous_commit off).
   */
  statement(record: AuditRecord): pg.QueryConfig {
    return this.#query(IN_TRANSACTION, record);
  }

  #query(text: string, record: AuditRecord): pg.QueryConfig {
    const body = serialise({
      kid: this.#key.kid,
      id: record.requestId,
      tenant: record.tenant,
      principal: record.principal === null ? null : record.principal.slice(0, MAX_PRINCIPAL_CHARS),
      fingerprint: record.fingerprint,
      statement: this.#redaction === 'full' && record.statement !== null ? fit(record.statement) : null,
      verdict: record.verdict,
      reason: record.reason ?? null,
      rows: record.rows ?? null,
      ms: record.durationMs === undefined ? null : Math.round(record.durationMs * 1000) / 1000,
      code: record.code ?? null,
      sqlstate: record.sqlstate ?? null,
    });
    const mac = createHmac('sha256', this.#key.secret).update(AUDIT_MAC_PREFIX + body).digest('hex');
    return { text, values: [body, mac], queryMode: 'extended' } as pg.QueryConfig;
  }
}

/**
 * JSON with every non-ASCII character escaped: the MAC is computed over these exact bytes here and
 * over convert_to(record, 'UTF8') in the database, which agree for ASCII whatever the encodings.
 * Strings must be well-formed first: JSON.stringify writes a lone surrogate as `\ud800`, which
 * jsonb refuses, so one such character in a comment would make the record unloggable.
 */
function serialise(value: Record<string, unknown>): string {
  const clean = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, typeof v === 'string' ? v.toWellFormed() : v]));
  return JSON.stringify(clean).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Characters `serialise` writes for one UTF-16 unit of a string. */
function cost(c: number): number {
  if (c >= 0x7f) return 6;
  if (c === 0x22 || c === 0x5c || c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d) return 2;
  return c < 0x20 ? 6 : 1;
}

/**
 * The statement as stored: without NUL (jsonb refuses \u0000, and Postgres could not have run a
 * statement containing one), well-formed, and within STATEMENT_BUDGET characters serialised (60,000
 * DEL characters are 360,000). A statement over it first loses its comments, which Postgres reads
 * as whitespace: padding in a comment cannot push the SQL that ran out of its record. Past that
 * (long literals), its head and tail are kept around a note that gives the full length and the
 * SHA-256 of the whole text, so the record still identifies exactly what ran.
 */
function fit(statement: string): string {
  const text = statement.replaceAll('\0', '').toWellFormed();
  if (serialisedLength(text) <= STATEMENT_BUDGET) return text;
  const bare = withoutComments(text);
  const note = `\n/* tenantfence: comments removed for the audit log; ${text.length} characters in all, sha256 ${sha256(statement)} */`;
  if (serialisedLength(bare) + note.length <= STATEMENT_BUDGET) return bare + note;
  const cut = `\n/* tenantfence: ${bare.length} characters without comments (${text.length} with), cut here for the audit log; sha256 of the whole statement ${sha256(statement)} */\n`;
  const half = (STATEMENT_BUDGET - cut.length) / 2;
  const head = prefixWithin(bare, half);
  const tail = [...prefixWithin([...bare].reverse().join(''), half)].reverse().join('');
  return head + cut + tail;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function serialisedLength(text: string): number {
  let used = 0;
  for (let i = 0; i < text.length; i++) used += cost(text.charCodeAt(i));
  return used;
}

/** The longest prefix whose serialised length is within `budget`, never half a surrogate pair. */
function prefixWithin(text: string, budget: number): string {
  let used = 0;
  let end = 0;
  for (; end < text.length; end++) {
    used += cost(text.charCodeAt(end));
    if (used > budget) break;
  }
  if (end < text.length && end > 0 && (text.charCodeAt(end - 1) & 0xfc00) === 0xd800) end -= 1;
  return text.slice(0, end);
}
