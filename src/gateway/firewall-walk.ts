/**
 * The walk over every node of one statement's parse tree. It is generic: it descends into every
 * field of every node, whatever clause the node sits in, so a function in a FROM clause, a CTE,
 * a sublink, a window, ON CONFLICT or RETURNING is seen like one in the select list. Only a few
 * node types get a check of their own (relations, functions, operators, types, parameters,
 * locking, statements and their WITH scope); every node type not listed in firewall-nodes.ts is
 * refused. The walk also collects what the fingerprint hashes.
 */
import { createHash } from 'node:crypto';
import { ALLOWED_NODES, STATEMENT_NODES, STRUCT_FIELDS, refusedLabel } from './firewall-nodes.ts';
import {
  Refusal, checkColumn, checkFieldSelection, checkFunction, checkNodeVersion, checkOperator, checkRelation, checkSampleMethod,
  checkSequenceColumns, checkTypeName, unsupported,
} from './firewall-names.ts';
import type { FirewallRelations } from './firewall.ts';

type Json = { readonly [key: string]: unknown };

export { Refusal };

export interface WalkSettings {
  readonly write: boolean;
  readonly maxDepth: number;
  readonly maxValueBytes: number;
  /** The relations the agent may name; undefined: the name rules only. */
  readonly relations: FirewallRelations | undefined;
  /** The allowlist (defaults plus the gateway's extra names). */
  readonly allowed: ReadonlySet<string>;
  /** The allowlist cut to what the server has (see server-profile.ts); `allowed` without a server. */
  readonly functions: ReadonlySet<string>;
  /** The server's `server_version_num`: node types it lacks are refused. */
  readonly serverVersion: number;
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
    if (type !== 'SelectStmt') checkSequenceColumns(type, body, this.settings.relations);
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
        checkRelation(body, ctes, this.settings.relations);
        break;
      case 'FuncCall':
        checkFunction(body.funcname, this.settings);
        break;
      case 'A_Expr':
        checkOperator(body.name);
        break;
      case 'SubLink':
        checkOperator(body.operName);
        break;
      case 'SortBy':
        checkOperator(body.useOp);
        break;
      case 'TypeName':
        checkTypeName(body.names, this.settings.relations);
        break;
      case 'RangeTableSample':
        checkSampleMethod(body.method);
        break;
      case 'ColumnRef':
        checkColumn(body.fields);
        break;
      case 'A_Indirection':
        checkFieldSelection(body.indirection);
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
        checkNodeVersion(type, this.settings);
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
}

function asObject(value: unknown): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) unsupported('the statement');
  return value as Json;
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
