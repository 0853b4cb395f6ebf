/** A statement that tenantfence plans, prints (`--print`) or applies in one transaction. */
export interface Statement {
  readonly text: string;
  /** Bind parameters. A statement with values is never printed with them (they may be secret). */
  readonly values?: readonly unknown[];
  /** Shown instead of the statement by `--print` when it carries values. */
  readonly printAs?: string;
}

export function sql(text: string, values?: readonly unknown[], printAs?: string): Statement {
  return values === undefined ? { text } : { text, values, ...(printAs ? { printAs } : {}) };
}

/** The text `--print` shows: pasteable into a migration, with secrets left out. */
export function printStatements(statements: readonly Statement[]): string {
  return statements
    .map((s) => (s.values === undefined ? `${s.text.trim()};` : `-- ${s.printAs ?? 'a parameterised statement, not printed'}`))
    .join('\n\n') + '\n';
}

/** A one-line `--` comment: a newline in a name would end it and run the rest as SQL. */
export function sqlComment(text: string): string {
  return `-- ${text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')}`;
}
