/**
 * The red-team corpus (issue 10, item 4): attack cases as data, one JSON object per line in
 * `src/redteam/corpus/<category>.jsonl`, loaded from the folder (no hand list). A case:
 *
 *   {"id": "set-config-forged-b", "sql": "SELECT set_config(...)", "params"?: [...],
 *    "tool"?: "query" | "explain" | "list_tables" | "describe_table", "table"?: "...",
 *    "oracle"?: true, "expect"?: "refused", "layers"?: ["gateway", "mcp", "app"]}
 *
 * Placeholders in `sql`, `params` and `table`: {{A}} and {{B}} (the tenants' ids), {{B_KEY}} (an
 * oracle case runs twice: with a key of B's and with a key nobody has; the replies must not
 * differ), {{FORGED}} (A's own context token with B's id swapped in). `expect: "refused"` marks a
 * leak no marker shows (counts, statistics, other sessions): the layer must refuse it or fail it.
 * `layers` are the layers whose guarantee covers the case (DESIGN.md, the trust boundary): on the
 * others it is not run and reported `not-claimed`. The category is the file's name.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TenantfenceError, ErrorCodes } from '../errors.ts';

export type Layer = 'gateway' | 'mcp' | 'app';
export const LAYERS: readonly Layer[] = ['gateway', 'mcp', 'app'];

export interface RedteamCase {
  readonly id: string;
  readonly category: string;
  readonly sql: string;
  readonly params: readonly unknown[];
  readonly tool: 'query' | 'explain' | 'list_tables' | 'describe_table';
  readonly table?: string;
  readonly oracle: boolean;
  readonly expect?: 'refused';
  readonly layers: readonly Layer[];
}

export const CORPUS_DIR = fileURLToPath(new URL('./corpus/', import.meta.url));

/** Every case of the shipped corpus, or of the given JSONL files; ids are unique. */
export function loadCorpus(files?: readonly string[]): RedteamCase[] {
  const paths = files ?? readdirSync(CORPUS_DIR).filter((f) => f.endsWith('.jsonl')).sort().map((f) => join(CORPUS_DIR, f));
  const cases: RedteamCase[] = [];
  const seen = new Set<string>();
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      throw new TenantfenceError(ErrorCodes.USAGE, `Cannot read the corpus file ${path}; pass an existing .jsonl file to --corpus.`);
    }
    const category = basename(path).replace(/\.jsonl$/, '');
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      const c = parseCase(line, category, `${basename(path)}:${i + 1}`);
      if (seen.has(c.id)) throw new TenantfenceError(ErrorCodes.USAGE, `${basename(path)}:${i + 1}: the case id ${c.id} is used twice; ids must be unique.`);
      seen.add(c.id);
      cases.push(c);
    });
  }
  return cases;
}

function parseCase(line: string, fileCategory: string, where: string): RedteamCase {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw bad(where, 'is not valid JSON');
  }
  const str = (k: string) => (typeof raw[k] === 'string' && raw[k] !== '' ? (raw[k] as string) : undefined);
  const id = str('id');
  if (!id) throw bad(where, 'needs an "id"');
  const tool = (str('tool') ?? 'query') as RedteamCase['tool'];
  if (!['query', 'explain', 'list_tables', 'describe_table'].includes(tool)) throw bad(where, 'has an unknown "tool"');
  const sql = str('sql') ?? '';
  if ((tool === 'query' || tool === 'explain') && sql === '') throw bad(where, 'needs "sql"');
  const layers = raw.layers === undefined ? LAYERS : raw.layers;
  if (!Array.isArray(layers) || layers.length === 0 || layers.some((l) => !LAYERS.includes(l as Layer))) throw bad(where, 'has bad "layers"');
  if (raw.params !== undefined && !Array.isArray(raw.params)) throw bad(where, 'has "params" that is not a list');
  if (raw.expect !== undefined && raw.expect !== 'refused') throw bad(where, 'has an unknown "expect"');
  return {
    id,
    category: str('category') ?? fileCategory,
    sql,
    params: (raw.params as unknown[] | undefined) ?? [],
    tool,
    ...(str('table') ? { table: str('table') } : {}),
    oracle: raw.oracle === true,
    ...(raw.expect === 'refused' ? { expect: 'refused' as const } : {}),
    layers: layers as Layer[],
  };
}

function bad(where: string, what: string): TenantfenceError {
  return new TenantfenceError(ErrorCodes.USAGE, `Corpus line ${where} ${what}; see src/redteam/corpus.ts for the case format.`);
}
