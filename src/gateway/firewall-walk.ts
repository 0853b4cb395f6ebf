/**
 * The walk over every node of one statement's parse tree. It is generic: it descends into every
 * field of every node, whatever clause the node sits in, so a function in a FROM clause, a CTE,
 * a sublink, a window, ON CONFLICT or RETURNING is seen like one in the select list. Only a few
 * node types get a check of their own (relations, functions, operators, types, parameters,
 * locking, statements and their WITH scope); every node type not listed in firewall-nodes.ts is
 * refused. The walk also collects what the fingerprint hashes.
 */
import { createHash } from 'node:crypto';
import { REFUSED_SCHEMAS, REFUSED_TYPES, SYSTEM_COLUMNS } from './allowlist.ts';
import type { FirewallReason } from './firewall.ts';
import { ALLOWED_NODES, STATEMENT_NODES, STRUCT_FIELDS, refusedLabel } from './firewall-nodes.ts';

type Json = { readonly [key: string]: unknown };

/** A refusal, thrown inside the walk and turned into a verdict by checkSql. */
export class Refusal {
  constructor(
    readonly reason: FirewallReason,
    readonly message: string,
  ) {}
}

export interface WalkSettings {
  readonly write: boolean;
  readonly maxDepth: number;
  readonly functions: ReadonlySet<string>;
}

export interface WalkResult {
  readonly kind: 'select' | 'insert' | 'update' | 'delete';
  readonly paramCount: number;
  readonly fingerprint: string;
}

const KINDS = { SelectStmt: 'select', InsertStmt: 'insert', UpdateStmt: 'update', DeleteStmt: 'delete' } as const;
const NO_CTES: readonly string[] = [];

/** Walks one top-level statement; throws a `Refusal` at the first thing it refuses. */
export function walkStatement(type: string, body: unknown, settings: WalkSettings): WalkResult {
  if (!STATEMENT_NODES.has(type)) throw refuseNode(type, settings.write);
  const walker = new Walker(settings);
  walker.statement(type, asObject(body), 1, NO_CTES, true);
  const fingerprint = createHash('sha256').update(walker.parts.join('\u0001')).digest('hex').slice(0, 16);
  return { kind: KINDS[type as keyof typeof KINDS], paramCount: walker.paramCount, fingerprint };
}

/** System schemas (Postgres reserves the `pg_` prefix) and the ones listed in the allowlist file. */
export function isRefusedSchema(schema: string): boolean {
  return schema.startsWith('pg_') || REFUSED_SCHEMAS.includes(schema);
}

const LOOK_ELSEWHERE = 'use the list_tables and describe_table tools for schema questions; tenant filtering is automatic';

class Walker {
  paramCount = 0;
  /** Node types, names and flags in tree order; constants and locations are left out. */
  readonly parts: string[] = [];

  constructor(private readonly settings: WalkSettings) {}

  statement(type: string, body: Json, depth: number, ctes: readonly string[], top: boolean): void {
    if (type !== 'SelectStmt') {
      if (!this.settings.write) {
        throw new Refusal('write_in_read_mode', `${KINDS[type as keyof typeof KINDS].toUpperCase()} is refused in read-only mode: send a SELECT, or use a gateway started with write access.`);
      }
      if (!top) {
        throw new Refusal('statement_kind', 'Data-modifying statements inside WITH are refused: send the INSERT, UPDATE or DELETE on its own as the whole statement.');
      }
    }
    if (body.intoClause !== undefined) throw refuseNode('IntoClause', this.settings.write);
    this.parts.push(type);
    const inner = body.withClause === undefined ? ctes : this.withClause(asObject(body.withClause), depth + 1, ctes);
    for (const key in body) {
      if (key === 'withClause' || key === 'location') continue;
      // The target of INSERT/UPDATE/DELETE is always a table, never a CTE of the same name.
      if (key === 'relation' && type !== 'SelectStmt') this.node('RangeVar', asObject(body[key]), depth + 1, NO_CTES);
      else this.value(body[key], type, key, depth + 1, inner);
    }
  }

  /**
   * A CTE is visible to later siblings and to the statement; with RECURSIVE, to every sibling
   * including itself (https://www.postgresql.org/docs/current/queries-with.html).
   */
  private withClause(clause: Json, depth: number, outer: readonly string[]): readonly string[] {
    this.depth(depth);
    this.parts.push('WithClause');
    const items = Array.isArray(clause.ctes) ? clause.ctes : [];
    const bodies = items.map((item) => asObject((item as Json | undefined)?.CommonTableExpr));
    const names = bodies.map((cte) => (typeof cte.ctename === 'string' ? cte.ctename : unsupported('WITH')));
    const all = outer.concat(names);
    let visible = clause.recursive === true ? all : outer;
    bodies.forEach((cte, i) => {
      this.depth(depth + 1);
      this.parts.push('CommonTableExpr');
      this.children('CommonTableExpr', cte, depth + 1, visible);
      if (clause.recursive !== true) visible = visible.concat(names[i]!);
    });
    for (const key in clause) {
      if (key !== 'ctes' && key !== 'recursive' && key !== 'location') unsupported('WITH');
    }
    return all;
  }

  /** A child: a wrapped node `{"Type": {...}}`, a list of them, a bare struct, or a scalar. */
  private value(value: unknown, parent: string, field: string, depth: number, ctes: readonly string[]): void {
    if (typeof value !== 'object' || value === null) {
      if (typeof value === 'string') this.parts.push(value);
      else if (value === true) this.parts.push(field);
      return;
    }
    if (Array.isArray(value)) {
      for (const item of value) this.value(item, parent, field, depth, ctes);
      return;
    }
    let type: string | undefined;
    for (const key in value) {
      type = key;
      break;
    }
    if (type !== undefined && type.charCodeAt(0) >= 65 && type.charCodeAt(0) <= 90) {
      for (const key in value) if (key !== type) unsupported(parent);
      const body = (value as Json)[type];
      if (typeof body !== 'object' || body === null || Array.isArray(body)) unsupported(type);
      this.node(type, body as Json, depth, ctes);
      return;
    }
    if (type === undefined) return; // `{}`: an absent node inside a list (e.g. no column definitions)
    const struct = STRUCT_FIELDS.get(`${parent}.${field}`);
    if (struct === undefined) unsupported(`${parent}.${field}`);
    this.node(struct, value as Json, depth, ctes);
  }

  private node(type: string, body: Json, depth: number, ctes: readonly string[]): void {
    this.depth(depth);
    switch (type) {
      case 'SelectStmt':
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
        return this.statement(type, body, depth, ctes, false);
      case 'A_Const':
        this.parts.push(type); // constants are left out of the fingerprint; they hold no nodes
        return;
      case 'RangeVar':
        this.relation(body, ctes);
        break;
      case 'FuncCall':
        this.func(body.funcname);
        break;
      case 'A_Expr':
        this.operator(body.name);
        break;
      case 'SubLink':
        this.operator(body.operName);
        break;
      case 'SortBy':
        this.operator(body.useOp);
        break;
      case 'TypeName':
        this.typeName(body.names);
        break;
      case 'RangeTableSample':
        this.sampleMethod(body.method);
        break;
      case 'ColumnRef':
        this.column(body.fields);
        break;
      case 'A_Indirection':
        this.fieldSelection(body.indirection);
        break;
      case 'ParamRef':
        if (typeof body.number === 'number' && body.number > this.paramCount) this.paramCount = body.number;
        break;
      case 'LockingClause':
        if (!this.settings.write) {
          throw new Refusal('locking_clause', 'FOR UPDATE and FOR SHARE are refused in read-only mode: remove the locking clause; a read needs no row locks.');
        }
        break;
      default:
        if (!ALLOWED_NODES.has(type)) throw refuseNode(type, this.settings.write);
    }
    this.parts.push(type);
    this.children(type, body, depth, ctes);
  }

  private children(type: string, body: Json, depth: number, ctes: readonly string[]): void {
    for (const key in body) {
      if (key !== 'location') this.value(body[key], type, key, depth + 1, ctes);
    }
  }

  private depth(depth: number): void {
    if (depth > this.settings.maxDepth) {
      throw new Refusal('too_deep', `The statement nests deeper than ${this.settings.maxDepth} levels: flatten it (fewer nested subqueries or chained operators, or a CTE per step).`);
    }
  }

  /**
   * Postgres looks an unqualified name up in the enclosing WITH clauses first, then in the
   * implicit pg_catalog, then in the search path; a qualified name never matches a CTE.
   */
  private relation(body: Json, ctes: readonly string[]): void {
    const { relname: name, schemaname: schema, catalogname: catalog } = body;
    if (typeof name !== 'string') unsupported('a table reference');
    if (schema !== undefined || catalog !== undefined) {
      if (typeof schema === 'string' && !isRefusedSchema(schema)) return;
      throw new Refusal('relation', `${String(schema)}.${name} is refused: system catalogs, statistics and the tenantfence schema are off limits; ${LOOK_ELSEWHERE}.`);
    }
    if (ctes.includes(name)) return;
    if (name.startsWith('pg_')) {
      throw new Refusal('relation', `${name} is refused: an unqualified pg_ name means the system catalog, which is off limits (schema-qualify your own table); ${LOOK_ELSEWHERE}.`);
    }
  }

  /** `t.xmin`: the last name of a column reference is the column (earlier ones name the table). */
  private column(fields: unknown): void {
    if (!Array.isArray(fields) || fields.length === 0) unsupported('a column reference');
    systemColumn(((fields[fields.length - 1] as Json).String as Json | undefined)?.sval);
  }

  /** `(t).xmin`, `(t.*).ctid`: a field selected from a whole-row value is a column too. */
  private fieldSelection(indirection: unknown): void {
    for (const item of Array.isArray(indirection) ? indirection : []) systemColumn(((item as Json).String as Json | undefined)?.sval);
  }

  private func(funcname: unknown): void {
    const parts = names(funcname, 'a function call');
    const name = parts.length === 1 ? parts[0]! : parts.length === 2 && parts[0] === 'pg_catalog' ? parts[1]! : undefined;
    if (name === undefined) {
      throw new Refusal('function', `${parts.join('.')}() is refused: schema-qualified functions are not allowed; remove it, tenant filtering is automatic.`);
    }
    systemColumn(name); // `xmin(t)` is Postgres's functional notation for `t.xmin`
    if (!this.settings.functions.has(name)) {
      throw new Refusal('function', `Functions outside the allowlist are refused: remove ${name}() (common string, math, date/time, aggregate, window, JSON, array and text-search functions are allowed); tenant filtering is automatic.`);
    }
  }

  /** `OPERATOR(schema.op)` outside pg_catalog could name any function; plain operators are fine. */
  private operator(list: unknown): void {
    if (list === undefined) return;
    const parts = names(list, 'an operator');
    if (parts.length > 2 || (parts.length === 2 && parts[0] !== 'pg_catalog')) {
      throw new Refusal('function', `OPERATOR(${parts.join('.')}) is refused: write the operator without a schema.`);
    }
  }

  private typeName(list: unknown): void {
    const parts = names(list, 'a type name');
    const schema = parts.length > 1 ? parts[parts.length - 2]! : undefined;
    if (schema !== undefined && schema !== 'pg_catalog' && isRefusedSchema(schema)) {
      throw new Refusal('other', `Types from schema ${schema} are refused: use built-in types or your own tables' types.`);
    }
    const type = parts[parts.length - 1]!;
    if ((schema === undefined || schema === 'pg_catalog') && REFUSED_TYPES.has(type)) {
      throw new Refusal('other', `The type ${type} is refused because transaction ids, tuple ids and catalog lookups reveal other tenants' activity or the catalogs: cast to text, numeric or your own types instead.`);
    }
  }

  private sampleMethod(list: unknown): void {
    const parts = names(list, 'TABLESAMPLE');
    const method = parts.length === 1 || parts[0] === 'pg_catalog' ? parts[parts.length - 1] : undefined;
    if (parts.length > 2 || (method !== 'system' && method !== 'bernoulli')) {
      throw new Refusal('function', `TABLESAMPLE ${parts.join('.')} is refused: use TABLESAMPLE SYSTEM or BERNOULLI.`);
    }
  }
}

function systemColumn(name: unknown): void {
  if (typeof name === 'string' && SYSTEM_COLUMNS.has(name)) {
    throw new Refusal('other', `The system column ${name} is refused because system columns number rows and transactions across every tenant: select your table's own columns.`);
  }
}

/** The string parts of a name list (`[{String: {sval}}]`); anything else is refused. */
function names(list: unknown, what: string): string[] {
  if (!Array.isArray(list) || list.length === 0) unsupported(what);
  return list.map((item) => {
    const sval = ((item as Json | undefined)?.String as Json | undefined)?.sval;
    if (sval !== undefined && typeof sval !== 'string') unsupported(what);
    return sval ?? '';
  });
}

function asObject(value: unknown): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) unsupported('the statement');
  return value as Json;
}

function unsupported(where: string): never {
  throw new Refusal('other', `The firewall does not recognise the shape of ${where}: rewrite the statement in plainer SQL.`);
}

function refuseNode(type: string, write: boolean): Refusal {
  const statement = type.endsWith('Stmt') || type === 'IntoClause';
  const advice = !statement
    ? 'rewrite the query without it.'
    : write
      ? 'send one SELECT, INSERT, UPDATE or DELETE; the gateway handles transactions, settings and tenant scoping.'
      : 'send one SELECT (or VALUES, or WITH ... SELECT); the gateway handles transactions, settings and tenant scoping.';
  return new Refusal(statement ? 'statement_kind' : 'other', `${refusedLabel(type)} cannot run through the gateway: ${advice}`);
}
