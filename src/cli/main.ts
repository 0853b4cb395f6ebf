/**
 * The argv layer: parse, call the typed command, print, pick the exit code. Nothing else.
 * Exit codes: 0 ok; 1 the command ran and found a problem (a leaked attack, a failed check);
 * 2 usage, connection or refusal errors (a TenantfenceError).
 */
import { parseArgs } from 'node:util';
import { TenantfenceError, ErrorCodes, connectionProblem, isTenantfenceError, toTenantfenceError } from '../errors.ts';
import { AGENT_PASSWORD_ENV, APP_PASSWORD_ENV, init } from './commands/init.ts';
import { protect } from './commands/protect.ts';
import { keysList, retireKey, rotateKey } from './commands/keys.ts';
import { demo, formatDemo } from './commands/demo.ts';
import { audit, type AuditFormat, type FailOn } from './commands/audit.ts';
import { serve, untilSignal } from './commands/serve.ts';
import { mcp } from './commands/mcp.ts';
import { redteam } from './commands/redteam.ts';
import { formatResult } from '../redteam/runner.ts';
import { benchCommand } from './commands/bench.ts';
import { doctor } from './commands/doctor.ts';
import { processIo, type Io } from './io.ts';
import { MAX_APP_LOGINS } from '../sql/roles.ts';
import { common, dbOption, userDbOptions, integer, port, roleOptions, str, withDb, openTarget, type Command, type Values } from './args.ts';
import { VERSION } from '../version.ts';
import { visible } from '../audit/format/visible.ts';

const commands: Record<string, Command> = {
  init: {
    summary: 'install the tenantfence schema, roles, key table and verifier',
    usage: `tenantfence init [--app-role NAME] [--agent-role NAME] [--agent-nologin] [--app-temp]
       [--app-logins N] [--app-password] [--agent-password] [--print] [--database-url URL | --embedded]

Installs: the NOLOGIN owner role tenantfence_owner, the app role (default tenantfence_app),
the agent role (default tenantfence_agent, LOGIN, no TEMP, no CREATE), the schema tenantfence,
the owner-only key table and tenantfence.current_tenant(). Idempotent; one transaction.
The signing key comes from TENANTFENCE_SECRET; when unset and no key is stored, init generates
one and prints it once. Refuses (exit 2, nothing applied) roles that the audit's role rules
(tenantfence audit, docs/audit.md) report as an error once the plan is applied: an app role that is
superuser or BYPASSRLS, owns a tenant table, reads the key or other sessions, or can SET ROLE to such
a role; an agent role that can reach one or holds more than tenant rows (its own attributes init corrects).
  --app-temp       let the app role create temporary tables (off: a temp view can shadow a table)
  --app-logins N   also create N login roles <app role>_c1..N, members of the app role, one per
                   pooled connection (rolePool in tenantfence/pg): one tenant's SQL then cannot
                   cancel, terminate or watch another's request (docs/context.md); default 0
  --app-password   set the app role's password from TENANTFENCE_APP_PASSWORD (never from argv)
  --agent-password set the agent role's password from TENANTFENCE_AGENT_PASSWORD
  --print          print the SQL instead of running it (the key and passwords are never printed)`,
    options: {
      ...userDbOptions,
      ...roleOptions,
      'agent-nologin': { type: 'boolean' },
      'app-temp': { type: 'boolean' },
      'app-logins': { type: 'string' },
      'app-password': { type: 'boolean' },
      'agent-password': { type: 'boolean' },
      print: { type: 'boolean' },
    },
    run: (v, _p, io) => {
      // Checked before anything connects: a bad count is a usage error, not a connection attempt.
      const appLogins = integer(v['app-logins'], '--app-logins', 0, 0, MAX_APP_LOGINS);
      return withDb(v, io, async (db) => {
        const result = await init({
          db,
          appRole: str(v['app-role']),
          agentRole: str(v['agent-role']),
          agentLogin: !v['agent-nologin'],
          appTemp: Boolean(v['app-temp']),
          appLogins,
          appPassword: v['app-password'] ? fromEnv(APP_PASSWORD_ENV, '--app-password') : undefined,
          agentPassword: v['agent-password'] ? fromEnv(AGENT_PASSWORD_ENV, '--agent-password') : undefined,
          secret: process.env.TENANTFENCE_SECRET,
          print: Boolean(v.print),
        });
        if (v.print) {
          io.out(result.sql);
          return 0;
        }
        io.out(`tenantfence installed: app role ${result.roles.app}, agent role ${result.roles.agent}, key ${result.keyId ?? '(existing)'}.\n`);
        for (const warning of result.warnings) io.err(`warning: ${warning}\n`);
        if (result.generatedSecret) {
          io.out(
            `\nA signing key was generated. It is shown once; put it in your application's secret store:\n\n` +
              `  TENANTFENCE_SECRET=${result.generatedSecret}\n\n` +
              `The database keeps it where only tenantfence_owner can read it. Rotate with \`tenantfence keys rotate\`.\n`,
          );
        }
        return 0;
      });
    },
  },
  protect: {
    summary: 'enable + force RLS with a tenant policy, index and grants on tables',
    usage: `tenantfence protect <table>... [--tenant-column tenant_id] [--app-role NAME] [--agent-role NAME] [--agent-write]
       [--replace-policies] [--allow-global-keys] [--default-tenant] [--admin-access] [--print]
       [--database-url URL | --embedded]

For each table: ENABLE and FORCE ROW LEVEL SECURITY, one policy (USING and WITH CHECK) comparing
the tenant column with the verified tenant cast to the column's type, an index leading with the
tenant column when none exists, and grants (app: SELECT/INSERT/UPDATE/DELETE; agent: SELECT, or
all four with --agent-write; never TRUNCATE, REFERENCES or TRIGGER). Idempotent; one transaction.
protect owns a table's permissive policies: PostgreSQL ORs them, so any other one widens the
tenant policy. It refuses (exit 2) a table that has others, naming each, and a table whose unique
or foreign keys leave the tenant column out (their violations reveal and let tenants squat other
tenants' values), unless:
  --replace-policies  drop the table's other permissive policies (restrictive ones stay)
  --allow-global-keys protect it anyway, with the keys printed as advice
  --default-tenant    make the tenant column's DEFAULT the verified tenant: INSERTs need not name it
  --admin-access      add the admin policy: members of tenantfence_admin see every tenant, only
                      inside withAdmin(pool, reason, fn), every use recorded (docs/operations.md)
  --print             print the SQL instead of running it (works before init; says what it needs)`,
    options: {
      ...userDbOptions,
      ...roleOptions,
      'tenant-column': { type: 'string' },
      'agent-write': { type: 'boolean' },
      'replace-policies': { type: 'boolean' },
      'allow-global-keys': { type: 'boolean' },
      'default-tenant': { type: 'boolean' },
      'admin-access': { type: 'boolean' },
      print: { type: 'boolean' },
    },
    run: (v, positionals, io) =>
      withDb(v, io, async (db) => {
        const result = await protect({
          db,
          tables: positionals,
          tenantColumn: str(v['tenant-column']),
          appRole: str(v['app-role']),
          agentRole: str(v['agent-role']),
          agentWrite: Boolean(v['agent-write']),
          replacePolicies: Boolean(v['replace-policies']),
          allowGlobalKeys: Boolean(v['allow-global-keys']),
          defaultTenant: Boolean(v['default-tenant']),
          adminAccess: Boolean(v['admin-access']),
          print: Boolean(v.print),
        });
        if (v.print) io.out(result.sql);
        else io.out(`protected: ${result.tables.join(', ')}\n`);
        for (const line of result.advice) io.err(`advice: ${line}\n`);
        return 0;
      }),
  },
  keys: {
    summary: 'list, rotate or retire signing keys',
    usage: `tenantfence keys list|rotate|retire <key-id> [--json] [--database-url URL | --embedded]

rotate  adds a key and prints its secret once; old tokens keep working until the old key is retired
retire  retires a key (refused for the last active key)`,
    options: { ...userDbOptions, json: { type: 'boolean' } },
    run: (v, positionals, io) =>
      withDb(v, io, async (db) => {
        const [action, keyId, ...rest] = positionals;
        if (rest.length > 0 || (action === 'retire') !== (keyId !== undefined)) throw usage('keys');
        if (action === 'rotate') {
          const { keyId: kid, secret } = await rotateKey({ db });
          io.out(v.json ? `${JSON.stringify({ keyId: kid, secret })}\n` : `New key ${kid}. Sign with it from now on (shown once):\n\n  TENANTFENCE_SECRET=${secret}\n\nRetire the old key once no token signed with it is in flight.\n`);
          return 0;
        }
        const keys = action === 'list' ? await keysList({ db }) : action === 'retire' ? await retireKey({ db, keyId: keyId! }) : undefined;
        if (!keys) throw usage('keys');
        io.out(v.json ? `${JSON.stringify(keys)}\n` : keys.map((k) => `${k.kid}\t${k.active ? 'active' : 'retired'}\n`).join(''));
        return 0;
      }),
  },
  audit: {
    summary: 'lint a live database for RLS tenant-isolation pitfalls (CI: exit 1 on findings)',
    usage: `tenantfence audit [--schema public,...] [--tenant-column tenant_id] [--app-role R] [--agent-role R]
       [--format text|json|sarif|html] [--output FILE] [--fail-on error|warn|info|never]
       [--baseline FILE] [--write-baseline FILE] [--database-url URL | --embedded]

Reads the catalog (one read-only transaction) and reports every known RLS isolation pitfall on
tables with the tenant column in the given schemas, and on the views, functions and roles that
reach them. Rules and fixes: docs/audit.md.
  --fail-on LEVEL        exit 1 when a finding at or above LEVEL remains (default error)
  --baseline FILE        suppress the findings recorded in FILE; report only new ones
  --write-baseline FILE  record every current finding in FILE (they count as accepted)
Exit codes: 0 clean at --fail-on, 1 findings, 2 usage or connection error.`,
    options: {
      ...userDbOptions,
      ...roleOptions,
      schema: { type: 'string' },
      'tenant-column': { type: 'string' },
      format: { type: 'string' },
      output: { type: 'string' },
      'fail-on': { type: 'string' },
      baseline: { type: 'string' },
      'write-baseline': { type: 'string' },
    },
    run: (v, positionals, io) => {
      if (positionals.length > 0) throw usage('audit');
      return withDb(v, io, async (db) => {
        const result = await audit({
          db,
          schemas: str(v.schema)?.split(',').map((s) => s.trim()),
          tenantColumn: str(v['tenant-column']),
          appRole: str(v['app-role']),
          agentRole: str(v['agent-role']),
          format: str(v.format) as AuditFormat | undefined,
          output: str(v.output),
          failOn: str(v['fail-on']) as FailOn | undefined,
          baseline: str(v.baseline),
          writeBaseline: str(v['write-baseline']),
          color: io.isTTY,
          databaseName: db.database,
        });
        io.out(result.stdout);
        io.err(result.stderr);
        return result.exitCode;
      });
    },
  },
  doctor: {
    summary: 'check a deployment: key, roles, tables, logins (exit 1 on problems)',
    usage: `tenantfence doctor [--app-role NAME] [--agent-role NAME] [--schema public,...] [--tenant-column tenant_id] [--json] [--database-url URL]

Read-only. Checks, with the environment the application and gateway use: that init ran; that the
key in TENANTFENCE_SECRET is stored, active, and that a context signed with it verifies (a wrong or
retired key makes every query return no rows, silently); the audit's role rules; tenant tables with
row level security off or without a policy; that the agent role logs in (TENANTFENCE_AGENT_DATABASE_URL,
default DATABASE_URL as the agent); and, with TENANTFENCE_APP_DATABASE_URL, the app role's login and
fence. Exit 0 when all is well, 1 on problems, 2 on usage or connection errors.`,
    options: { ...dbOption, ...roleOptions, schema: { type: 'string' }, 'tenant-column': { type: 'string' }, json: { type: 'boolean' } },
    run: (v, positionals, io) => {
      if (positionals.length > 0) throw usage('doctor');
      return withDb(v, io, async (db) => {
        const checks = await doctor({
          db,
          url: str(v['database-url']) ?? process.env.DATABASE_URL,
          secret: process.env.TENANTFENCE_SECRET,
          appUrl: process.env.TENANTFENCE_APP_DATABASE_URL || undefined,
          agentUrl: process.env.TENANTFENCE_AGENT_DATABASE_URL || undefined,
          appRole: str(v['app-role']),
          agentRole: str(v['agent-role']),
          schemas: str(v.schema)?.split(',').map((s) => s.trim()),
          tenantColumn: str(v['tenant-column']),
        });
        const problems = checks.filter((c) => !c.ok);
        io.out(v.json ? `${JSON.stringify({ ok: problems.length === 0, checks })}\n`
          : checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'}  ${c.check}: ${visible(c.detail)}\n`).join('') +
            `${problems.length === 0 ? 'No problems found.' : `${problems.length} problem(s).`}\n`);
        return problems.length === 0 ? 0 : 1;
      });
    },
  },
  demo: {
    summary: "the seed's recipe vs tenantfence: isolation checks and agent attacks, side by side",
    usage: `tenantfence demo [--json] [--database-url URL]

Creates a scratch database with the seed's conversations table, protects it, seeds two tenants,
checks isolation, then runs agent-style attacks against the seed's recipe (GUC policy, SET LOCAL)
and against tenantfence. Exit 0 iff every check passed and no attack leaked through tenantfence.
Without DATABASE_URL it starts an embedded PostgreSQL and stops it on exit.`,
    options: { ...dbOption, json: { type: 'boolean' } },
    run: async (v, positionals, io) => {
      if (positionals.length > 0) throw usage('demo');
      const target = await openTarget(v, io, { embedded: true });
      try {
        const result = await demo({ url: target.url });
        io.out(v.json ? `${JSON.stringify(result)}\n` : formatDemo(result, io.isTTY));
        const ok = result.checks.every((c) => c.passed) && result.attacks.every((a) => a.fenced === 'blocked');
        return ok ? 0 : 1;
      } finally {
        await target.close();
      }
    },
  },
  redteam: {
    summary: "attack tenant B as tenant A through the gateway, MCP and withTenant; judged on B's data",
    usage: `tenantfence redteam [--database-url URL] [--gateway URL --token-a JWT --token-b JWT] [--corpus FILE.jsonl]... [--json]

Runs the attack corpus (src/redteam/corpus/*.jsonl, or --corpus files) as tenant A. By default on a
scratch database it creates (tenants A and B, B holding marker strings) and drops afterwards: through
the gateway (in-process HTTP), the MCP server (in-memory client) and withTenant (application SQL; only
the classes its trust boundary claims). With --gateway, against that running gateway's HTTP API.
A case leaks when a marker of B's shows in any output, B's rows change, an oracle case answers
differently for an existing and a missing key of B's, or B's own request fails or stalls meanwhile.
Exit 1 on any leak. Without DATABASE_URL (and without --gateway) it starts an embedded PostgreSQL.
  --json           {"total","leaked","cases":[{"id","layer","category","verdict","evidence"}]}`,
    options: { ...dbOption, gateway: { type: 'string' }, 'token-a': { type: 'string' }, 'token-b': { type: 'string' }, corpus: { type: 'string', multiple: true }, json: { type: 'boolean' } },
    run: async (v, positionals, io) => {
      if (positionals.length > 0) throw usage('redteam');
      const url = str(v.gateway);
      const tokenA = str(v['token-a']);
      const tokenB = str(v['token-b']);
      if ((url !== undefined || tokenA !== undefined || tokenB !== undefined) && !(url && tokenA && tokenB)) {
        throw new TenantfenceError(ErrorCodes.USAGE, '--gateway needs --token-a and --token-b (JWTs of two different tenants).');
      }
      const corpus = Array.isArray(v.corpus) ? v.corpus : undefined;
      const run = async (dbUrl: string | undefined) =>
        redteam({ url: dbUrl, ...(url ? { gateway: { url, tokenA: tokenA!, tokenB: tokenB! } } : {}), ...(corpus ? { corpus } : {}) });
      let result;
      if (url) result = await run(undefined);
      else {
        const target = await openTarget(v, io, { embedded: true });
        try {
          result = await run(target.url);
        } finally {
          await target.close();
        }
      }
      io.out(v.json ? `${JSON.stringify(result)}\n` : formatResult(result));
      return result.leaked > 0 ? 1 : 0;
    },
  },
  serve: {
    summary: 'the agent SQL gateway: HTTP API for LLM-written SQL, one tenant per JWT',
    usage: `tenantfence serve [--port 8787] [--host 127.0.0.1] [--write] [--expose SCHEMA.TABLE]... [--agent-role NAME] [--database-url URL]

POST /v1/query {"sql","params"?,"maxRows"?}, GET /v1/schema, GET /healthz, GET /metrics (docs/gateway.md).
Runs each statement as the agent role (TENANTFENCE_AGENT_DATABASE_URL, default DATABASE_URL with the
agent role as user) in the tenant of the bearer JWT (TENANTFENCE_JWT_SECRET for HS256, or
TENANTFENCE_JWKS_URL; claim TENANTFENCE_TENANT_CLAIM, default tenant_id), signed with TENANTFENCE_SECRET.
  --write          allow single INSERT/UPDATE/DELETE (default: read-only)
  --expose T       let the agent also query table or view T, which tenantfence does not protect
                   (repeatable; TENANTFENCE_EXPOSE takes a comma-separated list)
/metrics is served only with TENANTFENCE_METRICS_TOKEN set, to scrapers that send it as a bearer token.`,
    options: { ...dbOption, 'agent-role': { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, write: { type: 'boolean' }, expose: { type: 'string', multiple: true } },
    run: async (v, positionals, io) => {
      if (positionals.length > 0) throw usage('serve');
      const server = await serve({ ...common(v), port: port(v.port, 8787), host: str(v.host) ?? '127.0.0.1' });
      io.err(`tenantfence: gateway (${v.write ? 'read-write' : 'read-only'}) listening on ${server.url}\n`);
      await untilSignal();
      await server.close();
      return 0;
    },
  },
  mcp: {
    summary: 'the agent SQL gateway as an MCP server (stdio, or Streamable HTTP with --http)',
    usage: `tenantfence mcp [--token JWT] [--http [--port 8788] [--host 127.0.0.1]] [--write] [--expose SCHEMA.TABLE]... [--agent-role NAME] [--database-url URL]

Tools: query, list_tables, describe_table, explain. Over stdio the tenant is the JWT given with
--token or TENANTFENCE_TOKEN; over HTTP (POST /mcp) it is each request's bearer JWT. Same
environment as tenantfence serve.`,
    options: { ...dbOption, 'agent-role': { type: 'string' }, token: { type: 'string' }, http: { type: 'boolean' }, port: { type: 'string' }, host: { type: 'string' }, write: { type: 'boolean' }, expose: { type: 'string', multiple: true } },
    run: async (v, positionals, io) => {
      if (positionals.length > 0) throw usage('mcp');
      const running = await mcp({ ...common(v), http: Boolean(v.http), token: str(v.token), port: port(v.port, 8788), host: str(v.host) ?? '127.0.0.1' });
      if (running.transport === 'http') io.err(`tenantfence: MCP server listening on ${running.url}/mcp\n`);
      await (running.transport === 'stdio' ? Promise.race([running.ended, untilSignal()]) : untilSignal());
      await running.close();
      return 0;
    },
  },
  bench: benchCommand,
};

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      io.out(help());
      return name === undefined ? 2 : 0;
    }
    if (name === '--version') {
      io.out(`tenantfence ${VERSION}\n`);
      return 0;
    }
    const command = commands[name];
    if (!command) throw new TenantfenceError(ErrorCodes.USAGE, `Unknown command "${name}"; run tenantfence --help for the list.`);
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(`usage: ${command.usage}\n`);
      return 0;
    }
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true });
    } catch (error) {
      throw new TenantfenceError(ErrorCodes.USAGE, `${(error as Error).message.split('\n')[0]}; run tenantfence ${name} --help.`);
    }
    return await command.run(parsed.values as Values, parsed.positionals, io);
  } catch (caught) {
    // Driver errors (a SQLSTATE, a socket code, a failed login) become coded errors too.
    const driverError = typeof (caught as { code?: unknown })?.code === 'string' || connectionProblem(caught) !== undefined;
    const error = driverError ? toTenantfenceError(caught) : caught;
    if (isTenantfenceError(error)) {
      io.err(`tenantfence: ${error.code}: ${error.message}\n`);
      if (process.env.TENANTFENCE_DEBUG && error.cause) io.err(`cause: ${String((error.cause as Error)?.stack ?? error.cause)}\n`);
      return 2;
    }
    io.err(`tenantfence: unexpected error: ${(error as Error)?.message ?? String(error)}\n`);
    if (process.env.TENANTFENCE_DEBUG) io.err(`${(error as Error)?.stack}\n`);
    return 1;
  }
}

function help(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  return `tenantfence: PostgreSQL RLS tenant isolation that agent-written SQL cannot route around

usage: tenantfence <command> [options]      (tenantfence <command> --help for details)

${Object.entries(commands).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`).join('\n')}

The database is --database-url, or DATABASE_URL, or libpq's PG* variables. Without one, init,
protect, keys and audit refuse (TF_NO_DATABASE) unless --embedded is given; demo uses an embedded
PostgreSQL that is started for the command and stopped when it ends.
`;
}

function fromEnv(name: string, flag: string): string {
  const value = process.env[name];
  if (!value) throw new TenantfenceError(ErrorCodes.USAGE, `${flag} reads the password from ${name}, which is not set; export it (argv would show it in ps).`);
  return value;
}

function usage(name: string): TenantfenceError {
  return new TenantfenceError(ErrorCodes.USAGE, `Wrong arguments; usage: ${commands[name]!.usage.split('\n')[0]}`);
}
