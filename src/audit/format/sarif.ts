/**
 * SARIF 2.1.0 for code-scanning UIs. A database has no source files, but GitHub code scanning
 * refuses a result without `physicalLocation.artifactLocation.uri` (and a URI with a scheme it
 * does not know), so each result names a repository-relative pseudo path, `database/<schema>/<name>`
 * (a role or schema: `database/<name>`), with line 1 as its region, beside the logical location
 * (the object's qualified name). The fingerprint is a partial fingerprint, which is how those UIs
 * track one finding across runs. No timestamps: the output is deterministic.
 */
import type { Finding, Level, Rule } from '../finding.ts';

const SARIF_LEVEL: Record<Level, 'error' | 'warning' | 'note'> = { error: 'error', warn: 'warning', info: 'note' };

export function formatSarif(rules: readonly Rule[], findings: readonly Finding[], version: string): string {
  const index = new Map(rules.map((r, i) => [r.id, i]));
  const log = {
    $schema: 'https://docs.oasis-open.org/sarif/sarif/v2.1.0/os/schemas/sarif-schema-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'tenantfence',
            version,
            rules: rules.map((r) => ({
              id: r.id,
              name: r.id.replace(/(^|-)([a-z0-9])/g, (_m, _d, c: string) => c.toUpperCase()),
              shortDescription: { text: r.title },
              fullDescription: { text: plain(r.doc) },
              help: { text: plain(r.doc), markdown: r.doc },
              defaultConfiguration: { level: SARIF_LEVEL[r.level] },
              properties: { tags: [r.category], category: r.category },
            })),
          },
        },
        columnKind: 'unicodeCodePoints',
        results: findings.map((f) => ({
          ruleId: f.rule,
          ...(index.has(f.rule) ? { ruleIndex: index.get(f.rule) } : {}),
          level: SARIF_LEVEL[f.level],
          message: { text: f.detail },
          locations: [{
            physicalLocation: { artifactLocation: { uri: artifactUri(f.object) }, region: { startLine: 1 } },
            logicalLocations: [{ fullyQualifiedName: f.object }],
          }],
          partialFingerprints: { 'tenantfence/v1': f.fingerprint },
          properties: { category: f.category, ...(f.remediation ? { remediation: f.remediation } : {}) },
        })),
      },
    ],
  };
  return `${JSON.stringify(log, null, 2)}\n`;
}

/**
 * `public.orders` -> `database/public/orders`: split at the first dot (schema, then the rest, which
 * keeps a function's argument list whole), each part percent-encoded so any name is a valid
 * relative URI reference. Stable across runs, which code scanning needs to match results.
 */
export function artifactUri(object: string): string {
  const dot = object.indexOf('.');
  const parts = dot > 0 ? [object.slice(0, dot), object.slice(dot + 1)] : [object];
  return ['database', ...parts.map(encodeURIComponent)].join('/');
}

function plain(markdown: string): string {
  return markdown.replace(/\*\*|`/g, '');
}
