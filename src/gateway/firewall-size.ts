/**
 * A static upper bound on the bytes one row of a statement can make the server hold (issue 10,
 * item 2). PostgreSQL has no per-statement memory cap: `work_mem` bounds sorts and hashes, not
 * the values expressions build, and a value lives until its row is done. Measured on PostgreSQL
 * 15 (the backend's VmHWM read from /proc as root): `replace` nested eight deep on an 8-byte
 * literal (209 bytes of SQL) grew one backend to 305 MB, the same with `work_mem = 64kB`, and
 * sibling expressions of that kind in one select list add up (2.3 GB in the red team's run).
 *
 * So the firewall bounds the size of every value from what the statement says: a literal is its
 * length, a parameter at most `PARAM_BYTES`, a column or any other value from the data a nominal
 * `DATA_BYTES`, and a function of values at most what `GROWTH` says it can make of them (the sum
 * of its arguments when it is not listed: `lower`, `substr`, `||`, `concat` never return more).
 * The bound of the statement is the sum over all its values, since a row's values are alive
 * together; over the budget, the statement is refused. Aggregates (`string_agg`, `array_agg`) are
 * bounded per value here, not per group: the rows they gather are bounded by statement_timeout
 * (docs/gateway.md, *Memory*).
 */
type Json = { readonly [key: string]: unknown };

/** What a bind parameter may be (the gateway's request body cap is 256 KiB). */
export const PARAM_BYTES = 256 * 1024;
/** A column's value, a subquery's, a function's without arguments: a nominal size, not a bound. */
export const DATA_BYTES = 4096;
/** The default budget: the sum of the bounds of one statement's values. */
export const DEFAULT_MAX_VALUE_BYTES = 32 * 1024 * 1024;

interface Arg {
  readonly size: number;
  /** The text of a string literal argument, when it is one. */
  readonly text?: string;
  /** It holds a literal or a parameter: its shape is the statement's, not the stored data's. */
  readonly chosen: boolean;
}

const sum = (args: readonly Arg[]) => args.reduce((n, a) => n + a.size, 0);
const at = (args: readonly Arg[], i: number) => args[i]?.size ?? 0;
const times = (factor: number) => (args: readonly Arg[]) => factor * sum(args) + 16;
const squared = (args: readonly Arg[], i: number) => (args[i]?.chosen ? at(args, i) * (at(args, i) + 2) : 8 * at(args, i));

/**
 * Functions whose result can be larger than their arguments together, with a bound on it.
 * Unlisted functions return at most the sum of their arguments (or a fixed-size value).
 */
const GROWTH: ReadonlyMap<string, (args: readonly Arg[]) => number> = new Map([
  // every match of b in a becomes c
  ['replace', (a) => at(a, 0) * Math.max(1, at(a, 2)) + at(a, 1)],
  // an empty pattern matches between every character; \0 and \& put the match itself back
  ['regexp_replace', (a) => {
    const n = at(a, 0) + 1;
    const literal = a[2]?.text !== undefined && !a[2].text.includes('\\');
    return n * (1 + at(a, 2) * (literal ? 1 : n)) + at(a, 1);
  }],
  // widths (`%1$999999s`, `%*s`) pad to any size, and one argument can be used many times
  ['format', (a) => {
    const fmt = a[0]?.text;
    if (fmt === undefined || fmt.includes('*')) return Infinity;
    const width = Math.max(0, ...[...fmt.matchAll(/[0-9]+/g)].map((m) => Number(m[0])));
    return at(a, 0) * (Math.max(0, ...a.slice(1).map((x) => x.size)) + width + 1);
  }],
  // the separator between every element (VARIADIC arrays have as many elements as bytes)
  ['concat_ws', (a) => sum(a) + at(a, 0) * (sum(a.slice(1)) + a.length)],
  ['array_to_string', (a) => at(a, 0) * (1 + at(a, 1) + at(a, 2)) + 16],
  // one element per character, each with its own header in memory
  ['string_to_array', (a) => 16 * (at(a, 0) + 1)],
  ['regexp_split_to_array', (a) => 16 * (at(a, 0) + 1)],
  ['encode', times(4)], // escape writes \ooo for one byte
  ['quote_literal', times(2)],
  ['quote_nullable', times(2)],
  ['quote_ident', times(2)],
  ['normalize', times(18)], // NFKD of U+FDFA is 18 characters
  ['translate', times(4)], // one byte can map to four
  ['upper', times(3)],
  ['lower', times(3)],
  ['initcap', times(3)],
  ['casefold', times(3)],
  ['convert_to', times(4)],
  ['convert_from', times(4)],
  ['to_char', times(10)], // `Day` is up to 9 characters
  ['to_json', times(6)], // a control character is written \u0001
  ['to_jsonb', times(6)],
  ['row_to_json', times(6)],
  ['array_to_json', times(6)],
  ['json_build_object', times(6)],
  ['json_build_array', times(6)],
  ['jsonb_build_object', times(6)],
  ['jsonb_build_array', times(6)],
  ['json_object', times(6)],
  ['jsonb_object', times(6)],
  ['to_tsvector', times(4)],
  ['array_to_tsvector', times(4)],
  // Indentation grows with depth, so output grows with the square of the nesting; `$.**` returns
  // every nested value, each as long as what it nests; ts_headline's StartSel/StopSel go around
  // every highlighted word. Squared only for shapes the statement chooses (a stored value's
  // nominal size is no bound to square).
  ['jsonb_pretty', (a) => squared(a, 0)],
  ['jsonb_path_query_array', (a) => squared(a, 0) + sum(a)],
  ['jsonb_path_query_first', (a) => squared(a, 0) + sum(a)],
  ['ts_headline', (a) => (a.some((x) => x.chosen) ? sum(a) * (sum(a) + 1) : 8 * sum(a))],
]);

/** Casts: bytea to text writes hex (`\x` + two characters a byte), and round trips compound. */
const castSize = (arg: number) => 2 * arg + 16;

/** The bound for a whole statement's parse tree (any node shape; unknown nodes sum their children). */
export function statementBytes(tree: unknown): number {
  return size(tree);
}

function size(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  if (Array.isArray(value)) {
    let total = 0;
    for (const item of value) total += size(item);
    return total;
  }
  let total = 0;
  for (const key in value) {
    const child = (value as Json)[key];
    total += key.charCodeAt(0) >= 65 && key.charCodeAt(0) <= 90 ? node(key, child as Json) : key === 'location' ? 0 : size(child);
  }
  return total;
}

function node(type: string, body: Json): number {
  switch (type) {
    case 'A_Const':
      if (typeof (body.sval as Json | undefined)?.sval === 'string') return Buffer.byteLength((body.sval as Json).sval as string);
      if (typeof (body.bsval as Json | undefined)?.bsval === 'string') return ((body.bsval as Json).bsval as string).length;
      return 32;
    case 'ParamRef':
      return PARAM_BYTES;
    case 'ColumnRef':
      return DATA_BYTES;
    case 'TypeCast':
      return castSize(size(body.arg));
    case 'FuncCall': {
      const name = funcName(body.funcname);
      const args = (Array.isArray(body.args) ? body.args : []).map(argument);
      const rest = size({ ...body, args: undefined, funcname: undefined });
      const rule = name === undefined ? undefined : GROWTH.get(name);
      const own = rule ? rule(args) : sum(args) + (args.length === 0 ? DATA_BYTES : 0);
      return own + rest;
    }
    default:
      return size(body);
  }
}

function argument(value: unknown): Arg {
  const s = size(value);
  const cnst = (value as Json | undefined)?.A_Const as Json | undefined;
  const text = (cnst?.sval as Json | undefined)?.sval;
  if (typeof text === 'string') return { size: s, text, chosen: true };
  // Only the squaring rules ask, so it is worked out only then.
  return { size: s, get chosen() { return chosen(value); } };
}

/** Whether a subtree holds a string literal or a parameter. */
function chosen(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value)) return value.some(chosen);
  for (const key in value) {
    if (key === 'ParamRef') return true;
    const child = (value as Json)[key];
    if (key === 'A_Const' && ((child as Json).sval !== undefined || (child as Json).bsval !== undefined)) return true;
    if (chosen(child)) return true;
  }
  return false;
}

/** `lower` or `pg_catalog.lower`; the walk has already refused every other qualified name. */
function funcName(list: unknown): string | undefined {
  if (!Array.isArray(list)) return undefined;
  const last = (list[list.length - 1] as Json | undefined)?.String as Json | undefined;
  return typeof last?.sval === 'string' ? last.sval : undefined;
}
