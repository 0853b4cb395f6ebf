/**
 * The gateway's audit writer (issue 3, item 6). One record per statement the gateway was asked to
 * run (ran, failed or refused), appended to `tenantfence.audit_log` through
 * `tenantfence.audit_append(record, mac)` (DDL in src/sql/init.ts):
 * - on its own pool, after the agent's transaction has ended, so nothing the statement does
 *   (an error, a rollback, a COMMIT of its own) can undo the record;
 * - signed with the tenantfence key, so agent SQL, which runs as the same role, cannot forge one;
 * - with the statement text or only its fingerprint (`redaction`); bind parameters never.
 */
import { createHmac } from 'node:crypto';
import type pg from 'pg';
import type { SigningKey } from '../context/token.ts';
import { AUDIT_MAC_PREFIX } from '../sql/init.ts';

export type AuditVerdict = 'ok' | 'error' | 'rejected';
export type AuditRedaction = 'full' | 'fingerprint';

export interface AuditRecord {
  readonly requestId: string;
  readonly tenant: string;
  readonly principal: string | null;
  readonly fingerprint: string | null;
  readonly statement: string;
  readonly verdict: AuditVerdict;
  /** The firewall's reason for a refusal. */
  readonly reason?: string;
  readonly rows?: number;
  readonly durationMs?: number;
  /** The TF_ code returned to the client, and the SQLSTATE behind it. */
  readonly code?: string;
  readonly sqlstate?: string;
  /** The statement committed a change (a write in write mode): its record is committed durably. */
  readonly changed?: boolean;
}

const MAX_STATEMENT_CHARS = 65_536;

/**
 * A record of a committed write is committed with the server's synchronous_commit, so it is as
 * durable as the change it describes. Every other record (reads, refusals, errors: nothing changed)
 * is committed with synchronous_commit off, which spares a WAL flush per read; a database crash can
 * lose the last moments of those records (at most 3 x wal_writer_delay), never a write's.
 * set_config(..., true) in the statement's own implicit transaction applies to its commit.
 */
const DURABLE = 'SELECT tenantfence.audit_append($1, $2)';
const RELAXED = "SELECT set_config('synchronous_commit', 'off', true), tenantfence.audit_append($1, $2)";

export class AuditLog {
  readonly #pool: pg.Pool;
  readonly #key: SigningKey;
  readonly #redaction: AuditRedaction;

  constructor(options: { pool: pg.Pool; key: SigningKey; redaction: AuditRedaction }) {
    this.#pool = options.pool;
    this.#key = options.key;
    this.#redaction = options.redaction;
  }

  async append(record: AuditRecord): Promise<void> {
    const text = serialise({
      kid: this.#key.kid,
      id: record.requestId,
      tenant: record.tenant,
      principal: record.principal,
      fingerprint: record.fingerprint,
      // jsonb refuses \u0000, and Postgres could never have run a statement containing NUL anyway.
      statement: this.#redaction === 'full' ? record.statement.replaceAll('\0', '').slice(0, MAX_STATEMENT_CHARS) : null,
      verdict: record.verdict,
      reason: record.reason ?? null,
      rows: record.rows ?? null,
      ms: record.durationMs === undefined ? null : Math.round(record.durationMs * 1000) / 1000,
      code: record.code ?? null,
      sqlstate: record.sqlstate ?? null,
    });
    const mac = createHmac('sha256', this.#key.secret).update(AUDIT_MAC_PREFIX + text).digest('hex');
    const durable = record.verdict === 'ok' && record.changed === true;
    await this.#pool.query({ text: durable ? DURABLE : RELAXED, values: [text, mac], queryMode: 'extended' } as pg.QueryConfig);
  }
}

/**
 * JSON with every non-ASCII character escaped: the MAC is computed over these exact bytes here and
 * over convert_to(record, 'UTF8') in the database, which agree for ASCII whatever the encodings.
 */
function serialise(value: object): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
