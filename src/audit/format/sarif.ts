/**
 * SARIF 2.1.0 for code-scanning UIs. A database has no source files, so results carry logical
 * locations (the object's qualified name) and the fingerprint as a partial fingerprint, which is
 * how those UIs track one finding across runs. No timestamps: the output is deterministic.
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
          locations: [{ logicalLocations: [{ fullyQualifiedName: f.object }] }],
          partialFingerprints: { 'tenantfence/v1': f.fingerprint },
          properties: { category: f.category, ...(f.remediation ? { remediation: f.remediation } : {}) },
        })),
      },
    ],
  };
  return `${JSON.stringify(log, null, 2)}\n`;
}

function plain(markdown: string): string {
  return markdown.replace(/\*\*|`/g, '');
}
