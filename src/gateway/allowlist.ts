/**
 * What the agent SQL firewall lets through, as data (STYLE.md habit 6). The firewall refuses by
 * default: a function that is not listed here is refused, whatever it does. A gateway can add
 * names with `FirewallOptions.allowFunctions`; it cannot remove the refusals below.
 *
 * A name here is a pg_catalog function name. It is accepted unqualified (`lower(x)`) or as
 * `pg_catalog.lower(x)`, never with another schema. Comparison is exact: a quoted `"LOWER"` is a
 * different name in Postgres and is refused.
 *
 * Left out on purpose (see docs/firewall.md): anything that reads or changes settings
 * (`set_config`, `current_setting`, `setseed`), sleeps or locks (`pg_sleep*`, `pg_advisory_*`),
 * signals backends, reads files or large objects, reaches other servers (dblink, fdw), notifies,
 * touches sequences (`nextval`, `currval`, `setval`, `lastval`: their values count other tenants'
 * rows), reveals transaction ids, sizes or statistics (`txid_*`, `pg_relation_size`, `pg_stat_*`),
 * runs SQL given as text (`query_to_xml`, `ts_stat`, `ts_rewrite`), and every `tenantfence.*`
 * function. Also left out: the one-call amplifiers `repeat`, `lpad`, `rpad` and `array_fill`,
 * which make a value of up to 1 GB in the server's memory from a few bytes of SQL. Nesting other
 * functions can still amplify (`replace` grows a string eightfold per level); what bounds that is
 * the server (1 GB per value, statement_timeout) and the gateway's frame guard, not this list.
 * generate_series stays: agents need date series, rows are produced lazily, and the row cap,
 * the byte cap and statement_timeout bound what one statement can do with them.
 */

const STRING = [
  'ascii', 'bit_length', 'btrim', 'char_length', 'character_length', 'chr', 'concat', 'concat_ws',
  'convert_from', 'convert_to', 'decode', 'encode', 'format', 'initcap', 'left', 'length', 'lower',
  'ltrim', 'md5', 'normalize', 'is_normalized', 'octet_length', 'overlay', 'position',
  'quote_ident', 'quote_literal', 'quote_nullable', 'regexp_count', 'regexp_instr', 'regexp_like',
  'regexp_match', 'regexp_matches', 'regexp_replace', 'regexp_split_to_array',
  'regexp_split_to_table', 'regexp_substr', 'replace', 'reverse', 'right', 'rtrim',
  'sha224', 'sha256', 'sha384', 'sha512', 'similar_to_escape', 'split_part', 'starts_with',
  'string_to_array', 'string_to_table', 'strpos', 'substr', 'substring', 'to_hex', 'translate',
  'unistr', 'upper', 'casefold',
];

const MATH = [
  'abs', 'acos', 'asin', 'atan', 'atan2', 'cbrt', 'ceil', 'ceiling', 'cos', 'cot', 'degrees', 'div',
  'exp', 'factorial', 'floor', 'gcd', 'lcm', 'ln', 'log', 'log10', 'min_scale', 'mod', 'pi', 'power',
  'pow', 'radians', 'random', 'random_normal', 'round', 'scale', 'sign', 'sin', 'sqrt', 'tan',
  'trim_scale', 'trunc', 'width_bucket',
];

/** Function-call spellings of casts (`int4(x)`, `text(x)`), which agents write now and then. */
const CASTS = ['bool', 'date', 'float4', 'float8', 'int2', 'int4', 'int8', 'interval', 'numeric', 'text', 'time', 'timestamp', 'timestamptz', 'uuid', 'varchar'];

const DATE_TIME = [
  'age', 'clock_timestamp', 'date_add', 'date_bin', 'date_part', 'date_subtract', 'date_trunc',
  'extract', 'isfinite', 'justify_days', 'justify_hours', 'justify_interval', 'make_date',
  'make_interval', 'make_time', 'make_timestamp', 'make_timestamptz', 'now', 'overlaps',
  'statement_timestamp', 'timezone', 'to_char', 'to_date', 'to_number', 'to_timestamp',
  'transaction_timestamp',
];

const AGGREGATE = [
  'any_value', 'array_agg', 'avg', 'bit_and', 'bit_or', 'bit_xor', 'bool_and', 'bool_or', 'corr',
  'count', 'covar_pop', 'covar_samp', 'every', 'json_agg', 'json_agg_strict', 'json_object_agg',
  'jsonb_agg', 'jsonb_agg_strict', 'jsonb_object_agg', 'max', 'min', 'mode', 'percentile_cont',
  'percentile_disc', 'range_agg', 'range_intersect_agg', 'regr_avgx', 'regr_avgy', 'regr_count',
  'regr_intercept', 'regr_r2', 'regr_slope', 'regr_sxx', 'regr_sxy', 'regr_syy', 'stddev',
  'stddev_pop', 'stddev_samp', 'string_agg', 'sum', 'var_pop', 'var_samp', 'variance',
];

const WINDOW = [
  'cume_dist', 'dense_rank', 'first_value', 'lag', 'last_value', 'lead', 'nth_value', 'ntile',
  'percent_rank', 'rank', 'row_number',
];

const JSON_FUNCTIONS = [
  'array_to_json', 'json_array_elements', 'json_array_elements_text', 'json_array_length',
  'json_build_array', 'json_build_object', 'json_each', 'json_each_text', 'json_extract_path',
  'json_extract_path_text', 'json_object', 'json_object_keys', 'json_populate_record',
  'json_populate_recordset', 'json_strip_nulls', 'json_to_record', 'json_to_recordset',
  'json_typeof', 'jsonb_array_elements', 'jsonb_array_elements_text', 'jsonb_array_length',
  'jsonb_build_array', 'jsonb_build_object', 'jsonb_each', 'jsonb_each_text', 'jsonb_extract_path',
  'jsonb_extract_path_text', 'jsonb_insert', 'jsonb_object', 'jsonb_object_keys',
  'jsonb_path_exists', 'jsonb_path_match', 'jsonb_path_query', 'jsonb_path_query_array',
  'jsonb_path_query_first', 'jsonb_populate_record', 'jsonb_populate_recordset', 'jsonb_pretty',
  'jsonb_set', 'jsonb_set_lax', 'jsonb_strip_nulls', 'jsonb_to_record', 'jsonb_to_recordset',
  'jsonb_typeof', 'row_to_json', 'to_json', 'to_jsonb',
];

const ARRAY = [
  'array_append', 'array_cat', 'array_dims', 'array_length', 'array_lower',
  'array_ndims', 'array_position', 'array_positions', 'array_prepend', 'array_remove',
  'array_replace', 'array_reverse', 'array_sample', 'array_shuffle', 'array_sort',
  'array_to_string', 'array_upper', 'cardinality', 'generate_series', 'generate_subscripts',
  'trim_array', 'unnest',
];

const TEXT_SEARCH = [
  'array_to_tsvector', 'numnode', 'phraseto_tsquery', 'plainto_tsquery', 'querytree', 'setweight',
  'strip', 'to_tsquery', 'to_tsvector', 'ts_headline', 'ts_rank', 'ts_rank_cd', 'tsvector_to_array',
  'websearch_to_tsquery',
];

const OTHER = [
  // uuid
  'gen_random_uuid', 'uuidv4', 'uuidv7', 'uuid_extract_timestamp', 'uuid_extract_version',
  // ranges
  'daterange', 'int4range', 'int8range', 'isempty', 'lower_inc', 'lower_inf', 'numrange',
  'range_merge', 'tsrange', 'tstzrange', 'upper_inc', 'upper_inf',
  // conditional helpers that are functions (coalesce, nullif, greatest, least are syntax)
  'num_nonnulls', 'num_nulls',
  // types of the agent's own values
  'pg_typeof',
];

/** The default function allowlist: pg_catalog names an agent may call. */
export const DEFAULT_ALLOWED_FUNCTIONS: readonly string[] = Object.freeze(
  [...STRING, ...MATH, ...CASTS, ...DATE_TIME, ...AGGREGATE, ...WINDOW, ...JSON_FUNCTIONS, ...ARRAY, ...TEXT_SEARCH, ...OTHER].sort(),
);

/**
 * Schemas whose relations and types are refused outright. Every schema whose name starts with
 * `pg_` is refused too (pg_catalog, pg_toast, pg_temp_N...): Postgres reserves that prefix for
 * system schemas. The gateway offers `list_tables`/`describe_table` for schema questions.
 */
export const REFUSED_SCHEMAS: readonly string[] = Object.freeze(['information_schema', 'tenantfence']);

/**
 * System columns, refused wherever a name can select a column: `c.xmin`, `(c).xmin`,
 * `(c.*).ctid`, and the functional notation `xmin(c)`. ctid, xmin, xmax, cmin and cmax number
 * rows and transactions across the whole table, so the gaps between one tenant's values count
 * the other tenants' rows and writes. tableoid leaks nothing of that kind; it is refused too so
 * that one rule covers every system column (the agent has no use for it).
 */
export const SYSTEM_COLUMNS: ReadonlySet<string> = new Set(['ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid']);

/**
 * Built-in types refused in casts and column definitions (`'3'::xid`, `CAST(x AS tid)`), and
 * their array types (`_xid`). Transaction and tuple ids: `age('3'::xid)` reads the cluster-wide
 * transaction counter, which counts every tenant's writes. The catalog-lookup types resolve names
 * of relations, functions, roles and schemas (`'pg_authid'::regclass`): the catalogs are off
 * limits, and a failed lookup tells which names exist. regtype, regconfig and regdictionary stay:
 * types are public, and text search needs `'english'::regconfig`.
 */
export const REFUSED_TYPES: ReadonlySet<string> = new Set(
  ['xid', 'xid8', 'cid', 'tid', 'regclass', 'regcollation', 'regnamespace', 'regoper', 'regoperator', 'regproc', 'regprocedure', 'regrole']
    .flatMap((t) => [t, `_${t}`]),
);

/**
 * EXPLAIN options `checkExplain` accepts. ANALYZE runs the statement; BUFFERS, WAL, TIMING,
 * SETTINGS, SUMMARY, MEMORY, SERIALIZE and GENERIC_PLAN are refused with it, as they only add
 * run-time or server details.
 */
export const EXPLAIN_OPTIONS: readonly string[] = Object.freeze(['costs', 'format', 'verbose']);

/**
 * Functions `FirewallOptions.allowFunctions` may never add: they change or reveal the tenant
 * context, sleep, signal other sessions, read server files, or reach other servers. The database
 * makes most of them harmless on its own (signed context, least-privilege role); the firewall
 * keeps them out anyway so a misconfigured gateway fails loudly instead of quietly.
 */
export const NEVER_ALLOWED_FUNCTIONS: readonly string[] = Object.freeze([
  'current_setting', 'dblink', 'dblink_exec', 'lo_export', 'lo_import', 'nextval', 'pg_advisory_lock',
  'pg_cancel_backend', 'pg_ls_dir', 'pg_notify', 'pg_read_binary_file', 'pg_read_file', 'pg_sleep',
  'pg_sleep_for', 'pg_sleep_until', 'pg_terminate_backend', 'query_to_xml', 'set_config', 'setval',
]);
