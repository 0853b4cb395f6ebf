/** The auditor: rules from `rules/`, a runner, baselines and four output formats. */
export { EXPOSURES, LEVELS, compareFindings, fingerprint, levelRank, type Category, type Exposure, type Finding, type Level, type Rule } from './finding.ts';
export { loadRules, RULES_DIR } from './registry.ts';
export { runAudit, type AuditConnection, type AuditOptions, type AuditReport, type TableStatus } from './runner.ts';
export { baselineOf, readBaseline, writeBaseline, BASELINE_FORMAT, type BaselineEntry } from './baseline.ts';
export { formatText, summaryLine } from './format/text.ts';
export { formatSarif } from './format/sarif.ts';
export { formatHtml } from './format/html.ts';
export { formatJson, JSON_FORMAT } from './format/json.ts';
