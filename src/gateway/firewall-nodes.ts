/**
 * Which parse-tree nodes the firewall knows, as data. The walk refuses any node type not listed
 * here, so a grammar feature added in a later libpg-query release is refused until someone has
 * looked at it (default deny, like the function allowlist).
 *
 * libpg-query's JSON writes a child whose declared type is the generic `Node` wrapped as
 * `{"TypeName": {...}}`, and a child whose declared type is a specific struct unwrapped, as a
 * bare `{...}`. The walk needs the type of those bare children, so `STRUCT_FIELDS` lists them
 * (from @pgsql/types, the typings generated from the same protobuf). A bare object under a field
 * that is not listed is refused.
 */

/**
 * Expression and clause nodes that may appear anywhere inside an allowed statement. WITH and its
 * CTEs are missing on purpose: the walk handles them itself, to track which names they define.
 */
export const ALLOWED_NODES: ReadonlySet<string> = new Set([
  // values
  'Integer', 'Float', 'Boolean', 'String', 'BitString', 'List', 'A_Const', 'ParamRef',
  // names, targets, expressions
  'Alias', 'ColumnRef', 'A_Star', 'A_Indices', 'A_Indirection', 'A_ArrayExpr', 'A_Expr', 'BoolExpr',
  'NullTest', 'BooleanTest', 'CaseExpr', 'CaseWhen', 'CoalesceExpr', 'MinMaxExpr', 'SQLValueFunction',
  'RowExpr', 'TypeCast', 'TypeName', 'CollateClause', 'FuncCall', 'NamedArgExpr', 'SubLink',
  'ResTarget', 'MultiAssignRef', 'SetToDefault',
  // FROM clause
  'RangeVar', 'RangeSubselect', 'RangeFunction', 'RangeTableSample', 'JoinExpr', 'ColumnDef',
  // clauses
  'SortBy', 'WindowDef', 'GroupingSet', 'GroupingFunc',
  'CTESearchClause', 'CTECycleClause', 'LockingClause', 'OnConflictClause', 'InferClause', 'IndexElem',
  'ReturningClause', 'ReturningOption',
  // SQL/JSON
  'JsonAggConstructor', 'JsonArgument', 'JsonArrayAgg', 'JsonArrayConstructor',
  'JsonArrayQueryConstructor', 'JsonBehavior', 'JsonFormat', 'JsonFuncExpr', 'JsonIsPredicate',
  'JsonKeyValue', 'JsonObjectAgg', 'JsonObjectConstructor', 'JsonOutput', 'JsonParseExpr',
  'JsonReturning', 'JsonScalarExpr', 'JsonSerializeExpr', 'JsonTable', 'JsonTableColumn',
  'JsonTablePathSpec', 'JsonValueExpr',
]);

/**
 * The first PostgreSQL release (server_version_num) that knows a node type, for the node types
 * newer than the oldest supported server (15). SQL/JSON constructors and IS JSON came in 16;
 * the query functions, JSON_TABLE, JSON(), JSON_SCALAR and JSON_SERIALIZE in 17; RETURNING
 * WITH (OLD/NEW AS ...) in 18. Helper nodes that only occur under these are not listed.
 */
export const NODE_SINCE: ReadonlyMap<string, number> = new Map([
  ...['JsonObjectConstructor', 'JsonArrayConstructor', 'JsonArrayQueryConstructor', 'JsonObjectAgg', 'JsonArrayAgg', 'JsonIsPredicate']
    .map((t): [string, number] => [t, 160000]),
  ...['JsonFuncExpr', 'JsonTable', 'JsonParseExpr', 'JsonScalarExpr', 'JsonSerializeExpr']
    .map((t): [string, number] => [t, 170000]),
  ['ReturningOption', 180000],
]);

/** The statements the firewall can accept; they get their own handling (scope, mode). */
export const STATEMENT_NODES: ReadonlySet<string> = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt']);

/** `Parent.field` → struct type, for children written unwrapped (see the header). */
export const STRUCT_FIELDS: ReadonlyMap<string, string> = new Map([
  ['A_Const.ival', 'Integer'], ['A_Const.fval', 'Float'], ['A_Const.boolval', 'Boolean'],
  ['A_Const.sval', 'String'], ['A_Const.bsval', 'BitString'],
  ['RangeVar.alias', 'Alias'], ['JoinExpr.alias', 'Alias'], ['JoinExpr.join_using_alias', 'Alias'],
  ['RangeSubselect.alias', 'Alias'], ['RangeFunction.alias', 'Alias'], ['JsonTable.alias', 'Alias'],
  ['SelectStmt.larg', 'SelectStmt'], ['SelectStmt.rarg', 'SelectStmt'], ['SelectStmt.intoClause', 'IntoClause'],
  ['SelectStmt.withClause', 'WithClause'], ['InsertStmt.withClause', 'WithClause'],
  ['UpdateStmt.withClause', 'WithClause'], ['DeleteStmt.withClause', 'WithClause'],
  ['InsertStmt.relation', 'RangeVar'], ['UpdateStmt.relation', 'RangeVar'], ['DeleteStmt.relation', 'RangeVar'],
  ['InsertStmt.onConflictClause', 'OnConflictClause'], ['OnConflictClause.infer', 'InferClause'],
  ['InsertStmt.returningClause', 'ReturningClause'], ['UpdateStmt.returningClause', 'ReturningClause'],
  ['DeleteStmt.returningClause', 'ReturningClause'],
  ['CommonTableExpr.search_clause', 'CTESearchClause'], ['CommonTableExpr.cycle_clause', 'CTECycleClause'],
  ['TypeCast.typeName', 'TypeName'], ['ColumnDef.typeName', 'TypeName'], ['ColumnDef.collClause', 'CollateClause'],
  ['JsonOutput.typeName', 'TypeName'], ['JsonTableColumn.typeName', 'TypeName'],
  ['FuncCall.over', 'WindowDef'], ['JsonAggConstructor.over', 'WindowDef'],
  ['JsonObjectAgg.constructor', 'JsonAggConstructor'], ['JsonArrayAgg.constructor', 'JsonAggConstructor'],
  ['JsonObjectAgg.arg', 'JsonKeyValue'], ['JsonArrayAgg.arg', 'JsonValueExpr'],
  ['JsonFuncExpr.on_empty', 'JsonBehavior'], ['JsonFuncExpr.on_error', 'JsonBehavior'],
  ['JsonTable.on_error', 'JsonBehavior'], ['JsonTableColumn.on_empty', 'JsonBehavior'],
  ['JsonTableColumn.on_error', 'JsonBehavior'],
  ['JsonValueExpr.format', 'JsonFormat'], ['JsonIsPredicate.format', 'JsonFormat'],
  ['JsonTableColumn.format', 'JsonFormat'], ['JsonArrayQueryConstructor.format', 'JsonFormat'],
  ['JsonReturning.format', 'JsonFormat'],
  ['JsonFuncExpr.output', 'JsonOutput'], ['JsonParseExpr.output', 'JsonOutput'],
  ['JsonScalarExpr.output', 'JsonOutput'], ['JsonSerializeExpr.output', 'JsonOutput'],
  ['JsonObjectConstructor.output', 'JsonOutput'], ['JsonArrayConstructor.output', 'JsonOutput'],
  ['JsonArrayQueryConstructor.output', 'JsonOutput'], ['JsonAggConstructor.output', 'JsonOutput'],
  ['JsonOutput.returning', 'JsonReturning'],
  ['JsonTable.pathspec', 'JsonTablePathSpec'], ['JsonTableColumn.pathspec', 'JsonTablePathSpec'],
  ['JsonArgument.val', 'JsonValueExpr'], ['JsonFuncExpr.context_item', 'JsonValueExpr'],
  ['JsonTable.context_item', 'JsonValueExpr'], ['JsonKeyValue.value', 'JsonValueExpr'],
  ['JsonParseExpr.expr', 'JsonValueExpr'], ['JsonSerializeExpr.expr', 'JsonValueExpr'],
]);

/** What to call a refused statement or node in a message an agent reads. */
const REFUSED_LABELS: Readonly<Record<string, string>> = {
  TransactionStmt: 'Transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT)',
  VariableSetStmt: 'SET and RESET',
  VariableShowStmt: 'SHOW',
  DiscardStmt: 'DISCARD',
  DoStmt: 'A DO block',
  CopyStmt: 'COPY',
  PrepareStmt: 'PREPARE',
  ExecuteStmt: 'EXECUTE',
  DeallocateStmt: 'DEALLOCATE',
  DeclareCursorStmt: 'DECLARE CURSOR',
  FetchStmt: 'FETCH and MOVE',
  ClosePortalStmt: 'CLOSE',
  ListenStmt: 'LISTEN',
  UnlistenStmt: 'UNLISTEN',
  NotifyStmt: 'NOTIFY',
  LockStmt: 'LOCK',
  VacuumStmt: 'VACUUM and ANALYZE',
  ExplainStmt: 'EXPLAIN (use the explain tool instead)',
  CallStmt: 'CALL',
  MergeStmt: 'MERGE',
  CreateTableAsStmt: 'CREATE TABLE AS',
  GrantStmt: 'GRANT and REVOKE',
  GrantRoleStmt: 'GRANT and REVOKE',
  CheckPointStmt: 'CHECKPOINT',
  LoadStmt: 'LOAD',
  IntoClause: 'SELECT INTO (it creates a table)',
  CurrentOfExpr: 'WHERE CURRENT OF (cursors are not available)',
  MergeSupportFunc: 'merge_action()',
  XmlExpr: 'XML construction',
  XmlSerialize: 'XMLSERIALIZE',
  RangeTableFunc: 'XMLTABLE',
  JsonObjectConstructor: 'JSON_OBJECT(...)',
  JsonArrayConstructor: 'JSON_ARRAY(...)',
  JsonArrayQueryConstructor: 'JSON_ARRAY(query)',
  JsonObjectAgg: 'JSON_OBJECTAGG',
  JsonArrayAgg: 'JSON_ARRAYAGG',
  JsonIsPredicate: 'IS JSON',
  JsonFuncExpr: 'JSON_VALUE, JSON_QUERY and JSON_EXISTS',
  JsonTable: 'JSON_TABLE',
  JsonParseExpr: 'JSON(...)',
  JsonScalarExpr: 'JSON_SCALAR',
  JsonSerializeExpr: 'JSON_SERIALIZE',
  ReturningOption: 'RETURNING WITH (OLD/NEW AS ...)',
};

/** A readable name for a refused node type; unknown types read as schema or utility statements. */
export function refusedLabel(type: string): string {
  if (Object.hasOwn(REFUSED_LABELS, type)) return REFUSED_LABELS[type]!;
  return type.endsWith('Stmt') ? 'Schema changes and other utility statements (CREATE, ALTER, DROP...)' : `The SQL construct ${type}`;
}
