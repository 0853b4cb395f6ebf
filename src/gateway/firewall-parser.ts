/**
 * The real PostgreSQL parser (libpg-query, PostgreSQL 18's grammar compiled to WASM), loaded once
 * and called synchronously.
 *
 * One hazard shapes this file. The parser's tree-to-JSON step recurses once per tree level on a
 * fixed native stack. A tree a few thousand levels deep (`SELECT -+-+-+…1`, 7.5 KB is enough)
 * overflows it, and the WASM instance is left half-way through a call: after a few dozen such
 * traps every later parse fails or reads stray memory. So:
 * 1. prevention: a statement longer than `MAX_TOKENS` characters has its tokens counted first
 *    (cheap, no parser involved) and is refused above `MAX_TOKENS`; every tree level needs at
 *    least one token, and the shallowest trap we measured needs about 7,500;
 * 2. containment: if the parser still throws anything but a syntax error, this instance is
 *    dropped and a fresh one is loaded in the background; statements are refused meanwhile.
 */
import type { ParseResult } from 'libpg-query';
import { TenantfenceError, ErrorCodes } from '../errors.ts';

/** The part of the libpg-query module this file uses. */
interface Parser {
  loadModule(): Promise<void>;
  parseSync(sql: string): ParseResult;
}

/** Parser instances one process may load (see `replace`). */
const MAX_INSTANCES = 8;

/** About half the token count at which we measured the first native-stack overflow. */
export const MAX_TOKENS = 4000;

// The ESM build, imported by URL so a poisoned instance can be replaced by a fresh one
// (a different URL is a different module instance, with its own WASM memory).
const parserUrl = import.meta.resolve('libpg-query/wasm/index.js');
let current: Parser | undefined;
let reloading: Promise<void> | undefined;
let generation = 0;

/** Loads the parser once; later calls return at once. */
export async function loadParser(): Promise<void> {
  if (current) return;
  reloading ??= (async () => {
    const url = generation === 0 ? parserUrl : `${parserUrl}?instance=${generation}`;
    const parser = (await import(url)) as Parser;
    await parser.loadModule();
    current = parser;
  })().finally(() => {
    reloading = undefined;
  });
  await reloading;
}

export type ParseOutcome =
  | { ok: true; tree: ParseResult }
  | { ok: false; syntax: true; message: string; cursor: number }
  /** The parser failed without a syntax error (`trapped`) or is being reloaded after one. */
  | { ok: false; syntax: false; trapped: boolean };

/** Parses one SQL text. Never throws for bad SQL; throws only if `loadParser` was never awaited. */
export function parse(sql: string): ParseOutcome {
  const parser = current;
  if (!parser) {
    if (generation === 0 && !reloading) {
      throw new TenantfenceError(ErrorCodes.USAGE, 'Await loadFirewall() once before calling checkSql() or checkExplain().');
    }
    if (!reloading) replace(); // the last reload failed: try again
    return { ok: false, syntax: false, trapped: false };
  }
  try {
    return { ok: true, tree: parser.parseSync(sql) };
  } catch (error) {
    if (error instanceof Error && error.name === 'SqlError') {
      const details = (error as Error & { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
      return { ok: false, syntax: true, message: error.message, cursor: details?.cursorPosition ?? 0 };
    }
    // A trap inside WASM (stack overflow, out-of-bounds access): never trust this instance again.
    current = undefined;
    generation += 1;
    replace();
    return { ok: false, syntax: false, trapped: true };
  }
}

/**
 * Loads a fresh instance in the background. The module loader keeps every instance it imported,
 * WASM memory included, so after `MAX_INSTANCES` the firewall stops reloading and refuses every
 * statement (fail closed) rather than grow without bound; the token cap makes a first trap unlikely.
 */
function replace(): void {
  if (generation >= MAX_INSTANCES) return;
  loadParser().catch(() => {
    // Refused meanwhile; the next statement retries.
  });
}

const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);
const isDigit = (c: number) => c >= 48 && c <= 57;
const isWord = (c: number) =>
  (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c === 36 || c >= 128;

/**
 * An upper bound on the number of tokens Postgres's lexer finds in `sql`, stopping past `limit`.
 * It follows the lexer's rules for what is not code (comments, nested block comments, quoted
 * strings and identifiers, E'' escapes, dollar quotes), so it can only count more tokens than
 * the lexer (an operator like `<=` counts twice), never fewer.
 */
export function countTokens(sql: string, limit: number, comments?: Array<[number, number]>): number {
  let n = 0;
  let i = 0;
  const end = sql.length;
  let eStringPrefix = false; // the token just before i is a lone `E`/`e` (then `'` opens E'...')
  while (i < end && n <= limit) {
    const c = sql.charCodeAt(i);
    const next = i + 1 < end ? sql.charCodeAt(i + 1) : 0;
    const afterE = eStringPrefix;
    eStringPrefix = false;
    if (isSpace(c)) {
      i += 1;
    } else if (c === 45 && next === 45) {
      const start = i;
      while (i < end && sql.charCodeAt(i) !== 10) i += 1; // -- comment
      comments?.push([start, i]);
    } else if (c === 47 && next === 42) {
      const start = i;
      let depth = 0; // /* nested */ comments
      do {
        if (sql.startsWith('/*', i)) (depth += 1), (i += 2);
        else if (sql.startsWith('*/', i)) (depth -= 1), (i += 2);
        else i += 1;
      } while (i < end && depth > 0);
      comments?.push([start, i]);
    } else if (c === 39 || c === 34) {
      i = skipQuoted(sql, i, c, c === 39 && afterE);
      n += 1;
    } else if (c === 36 && dollarTag(sql, i) !== undefined) {
      const tag = dollarTag(sql, i)!;
      const close = sql.indexOf(tag, i + tag.length);
      i = close < 0 ? end : close + tag.length;
      n += 1;
    } else if (isWord(c)) {
      // An identifier may contain `$` (`a$b`); a number or a `$1` parameter ends at one, and
      // `1$$…$$` is a number followed by a dollar-quoted string, as Postgres lexes it.
      const start = i;
      const identifier = !isDigit(c) && c !== 36;
      i += 1;
      while (i < end && isWord(sql.charCodeAt(i)) && (identifier || sql.charCodeAt(i) !== 36)) i += 1;
      eStringPrefix = i - start === 1 && (c === 69 || c === 101);
      n += 1;
    } else {
      i += 1;
      n += 1;
    }
  }
  return n;
}

/**
 * The statement with each comment replaced by one space, as the lexer reads it (a comment is
 * whitespace to Postgres, so the text runs the same).
 */
export function withoutComments(sql: string): string {
  const comments: Array<[number, number]> = [];
  countTokens(sql, Infinity, comments);
  if (comments.length === 0) return sql;
  let out = '';
  let at = 0;
  for (const [start, end] of comments) {
    out += `${sql.slice(at, start)} `;
    at = end;
  }
  return out + sql.slice(at);
}

/** Index after the closing quote; `''` (or `""`) is a doubled quote, `\x` an escape in E''. */
function skipQuoted(sql: string, start: number, quote: number, backslashEscapes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (backslashEscapes && c === 92) i += 2;
    else if (c === quote && sql.charCodeAt(i + 1) === quote) i += 2;
    else if (c === quote) return i + 1;
    else i += 1;
  }
  return i;
}

/** `$$` or `$tag$` at `i` (a tag starts with a letter or `_`), else undefined. */
function dollarTag(sql: string, i: number): string | undefined {
  let j = i + 1;
  const first = sql.charCodeAt(j);
  if (first === 36) return '$$';
  if (!isWord(first) || first === 36 || isDigit(first)) return undefined;
  while (j < sql.length && isWord(sql.charCodeAt(j)) && sql.charCodeAt(j) !== 36) j += 1;
  return sql.charCodeAt(j) === 36 ? sql.slice(i, j + 1) : undefined;
}
