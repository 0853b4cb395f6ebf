/**
 * The only place where identifiers and literals are turned into SQL text (STYLE.md habit 5).
 * Values that come from users at run time travel as bind parameters instead; `literal` exists
 * for DDL, where Postgres accepts no parameters (role names in GRANT, comments, defaults).
 */
import { TenantfenceError, ErrorCodes } from '../errors.ts';

/** Quotes an identifier exactly as Postgres's quote_ident would (always quoted, `"` doubled). */
export function ident(name: string): string {
  if (name.length === 0 || name.includes('\0')) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'An SQL identifier must be a non-empty name without NUL bytes.');
  }
  return `"${name.replaceAll('"', '""')}"`;
}

/** A possibly schema-qualified name, each part quoted. */
export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}

/** A standard-conforming string literal (`'` doubled, `E''` when a backslash is present). */
export function literal(value: string): string {
  if (value.includes('\0')) {
    throw new TenantfenceError(ErrorCodes.USAGE, 'An SQL literal cannot contain NUL bytes.');
  }
  const body = value.replaceAll("'", "''");
  return value.includes('\\') ? `E'${body.replaceAll('\\', '\\\\')}'` : `'${body}'`;
}

/**
 * Splits a user-written table reference (`orders`, `app.orders`, `"My Table"`) into schema and
 * name, following Postgres's rules: unquoted parts fold to lower case, quoted parts keep theirs.
 */
export function parseTableName(input: string, defaultSchema = 'public'): { schema: string; name: string } {
  const parts: string[] = [];
  let i = 0;
  while (i < input.length) {
    if (input[i] === '"') {
      let j = i + 1;
      let part = '';
      for (;;) {
        if (j >= input.length) throw badName(input);
        if (input[j] === '"') {
          if (input[j + 1] === '"') { part += '"'; j += 2; continue; }
          break;
        }
        part += input[j++];
      }
      parts.push(part);
      i = j + 1;
    } else {
      const m = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(input.slice(i));
      if (!m) throw badName(input);
      parts.push(m[0].toLowerCase());
      i += m[0].length;
    }
    if (i < input.length) {
      if (input[i] !== '.') throw badName(input);
      i++;
      if (i === input.length) throw badName(input);
    }
  }
  if (parts.length === 1) return { schema: defaultSchema, name: parts[0]! };
  if (parts.length === 2 && parts[0]!.length > 0 && parts[1]!.length > 0) return { schema: parts[0]!, name: parts[1]! };
  throw badName(input);
}

function badName(input: string): TenantfenceError {
  return new TenantfenceError(
    ErrorCodes.USAGE,
    `"${input.slice(0, 80)}" is not a table name; write table or schema.table (quote mixed case: "MyTable").`,
  );
}
