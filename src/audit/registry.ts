/**
 * The rule registry, built from the `rules/` folder (STYLE.md: rules are data, not a hand list).
 * A rule is `<id>.sql` plus `<id>.md`; the doc's front matter gives its title, level and category,
 * `scope: role` for a rule about what the app and agent roles are (init enforces those), and what
 * a finding `exposes` (the report's order after the level).
 * A half-written rule (one file of the pair, a bad level) fails loudly at load time.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { EXPOSURES, LEVELS, type Category, type Exposure, type Level, type Rule, type Scope } from './finding.ts';

/** `rules/` beside this module: src/audit/rules in development, dist/audit/rules once built. */
export const RULES_DIR = fileURLToPath(new URL('./rules/', import.meta.url));
export const PRELUDE_PATH = fileURLToPath(new URL('./prelude.sql', import.meta.url));
export const INVENTORY_PATH = fileURLToPath(new URL('./inventory.sql', import.meta.url));

const ID = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

export function loadRules(dir: string = RULES_DIR): Rule[] {
  const files = readdirSync(dir);
  const ids = [...new Set(files.filter((f) => /\.(sql|md)$/.test(f)).map((f) => f.replace(/\.(sql|md)$/, '')))].sort();
  return ids.map((id) => {
    if (!ID.test(id)) throw new Error(`audit rule file name "${id}" is not a kebab-case id`);
    if (!files.includes(`${id}.sql`) || !files.includes(`${id}.md`)) {
      throw new Error(`audit rule ${id} needs both ${id}.sql and ${id}.md in ${dir}`);
    }
    const { meta, body } = parseDoc(id, readFileSync(join(dir, `${id}.md`), 'utf8'));
    return { id, ...meta, doc: body, sql: readFileSync(join(dir, `${id}.sql`), 'utf8').trim() };
  });
}

function parseDoc(id: string, text: string): { meta: { title: string; level: Level; category: Category; scope: Scope; exposes: Exposure }; body: string } {
  const m = /^---\n([\s\S]*?)\n---\n([\s\S]*)$/.exec(text);
  if (!m) throw new Error(`audit rule ${id}: ${id}.md must start with a --- front matter block`);
  const fields = Object.fromEntries(
    m[1]!.split('\n').map((line) => {
      const at = line.indexOf(':');
      return [line.slice(0, at).trim(), line.slice(at + 1).trim()];
    }),
  );
  const { title, level, category, scope = 'table', exposes = 'rows' } = fields as Record<string, string | undefined>;
  if (!title) throw new Error(`audit rule ${id}: front matter needs a title`);
  if (!LEVELS.includes(level as Level)) throw new Error(`audit rule ${id}: level must be one of ${LEVELS.join(', ')}`);
  if (category !== 'security' && category !== 'performance') throw new Error(`audit rule ${id}: category must be security or performance`);
  if (scope !== 'table' && scope !== 'role') throw new Error(`audit rule ${id}: scope must be table or role`);
  if (!EXPOSURES.includes(exposes as Exposure)) throw new Error(`audit rule ${id}: exposes must be one of ${EXPOSURES.join(', ')}`);
  return { meta: { title, level: level as Level, category, scope, exposes: exposes as Exposure }, body: m[2]!.trim() };
}
