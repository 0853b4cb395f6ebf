/**
 * The body of `POST /v1/query` (and the MCP `query`/`explain` arguments), checked before anything
 * else happens (issue 3, item 7): wrong shapes get a 4xx with a message that says what to send.
 */
import { TenantfenceError, ErrorCodes } from '../errors.ts';

export interface QueryInput {
  readonly sql: string;
  readonly params: readonly unknown[];
  readonly maxRows: number | undefined;
}

const KEYS = new Set(['sql', 'params', 'maxRows']);
const SHAPE = 'send {"sql": "SELECT ...", "params": [..], "maxRows": n} with only "sql" required';

export function parseQueryInput(body: unknown, limits: { maxStatementBytes: number; maxParams: number; maxRows: number }): QueryInput {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad(`The body must be a JSON object; ${SHAPE}.`);
  const unknown = Object.keys(body).filter((k) => !KEYS.has(k));
  if (unknown.length > 0) throw bad(`Unknown field "${unknown[0]!.slice(0, 40)}"; ${SHAPE}.`);
  const { sql, params, maxRows } = body as Record<string, unknown>;
  if (typeof sql !== 'string') throw bad(`"sql" must be a string; ${SHAPE}.`);
  if (sql.trim() === '') throw bad('"sql" is empty; send one SQL statement.');
  if (Buffer.byteLength(sql) > limits.maxStatementBytes) {
    throw new TenantfenceError(ErrorCodes.PAYLOAD_TOO_LARGE, `"sql" is over ${limits.maxStatementBytes} bytes; send a shorter statement.`);
  }
  if (params !== undefined && !Array.isArray(params)) throw bad('"params" must be an array of values for $1, $2, ...');
  const values = (params ?? []) as unknown[];
  if (values.length > limits.maxParams) throw bad(`"params" has more than ${limits.maxParams} values.`);
  for (const v of values) {
    if (v !== null && !['string', 'number', 'boolean', 'object'].includes(typeof v)) throw bad('"params" values must be JSON values.');
  }
  if (maxRows !== undefined && (!Number.isInteger(maxRows) || (maxRows as number) < 1 || (maxRows as number) > limits.maxRows)) {
    throw bad(`"maxRows" must be an integer from 1 to ${limits.maxRows}.`);
  }
  return { sql, params: values, maxRows: maxRows as number | undefined };
}

function bad(message: string): TenantfenceError {
  return new TenantfenceError(ErrorCodes.BAD_REQUEST, message);
}
