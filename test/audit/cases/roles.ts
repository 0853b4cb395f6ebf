/** Cases for the role, privilege, view and function rules. */
import pg from 'pg';
import { ident, literal } from '../../../src/sql/quote.ts';
import { urlForRole } from '../../../src/embedded/database.ts';
import { SESSION_FUNCTIONS } from '../../../src/sql/lockdown.ts';
import { protectTables, serverVersion, tenantTable, type RuleCase } from '../support.ts';
import type { TestDatabase } from '../../support/db.ts';

async function orders(db: TestDatabase): Promise<void> {
  await tenantTable(db, 'orders');
  await protectTables(db, 'orders');
}

/** The pg_catalog functions init's lockdown takes (pg_stat_statements is an extension's). */
function lockdownNames(): string[] {
  return Object.values(SESSION_FUNCTIONS).flatMap((k) => k.names).filter((n) => n !== 'pg_stat_statements');
}

export const roleCases: RuleCase[] = [
  {
    rule: 'app-role-superuser',
    name: 'the app role is a superuser',
    setup: (db) => db.admin.query(`ALTER ROLE ${ident(db.roles.app)} SUPERUSER`).then(() => undefined),
    objects: (db) => [db.roles.app],
  },
  {
    rule: 'app-role-superuser',
    name: 'the agent role can SET ROLE to a superuser',
    setup: async (db) => {
      const admin = db.role('tf_admin');
      await db.admin.query(`CREATE ROLE ${ident(admin)} SUPERUSER NOLOGIN; GRANT ${ident(admin)} TO ${ident(db.roles.agent)}`);
    },
    objects: (db) => [db.roles.agent],
  },
  {
    rule: 'app-role-bypassrls',
    name: 'the app role has BYPASSRLS',
    setup: (db) => db.admin.query(`ALTER ROLE ${ident(db.roles.app)} BYPASSRLS`).then(() => undefined),
    objects: (db) => [db.roles.app],
  },
  {
    rule: 'app-role-bypassrls',
    name: 'the app role is a member of a BYPASSRLS role',
    setup: async (db) => {
      const ops = db.role('tf_ops');
      await db.admin.query(`CREATE ROLE ${ident(ops)} BYPASSRLS NOLOGIN; GRANT ${ident(ops)} TO ${ident(db.roles.app)}`);
    },
    objects: (db) => [db.roles.app],
  },
  {
    rule: 'view-bypasses-rls',
    name: 'a superuser-owned view the agent can read',
    setup: async (db) => {
      await orders(db);
      await db.admin.query(`CREATE VIEW order_totals AS SELECT tenant_id, count(*) AS n FROM orders GROUP BY tenant_id;
        GRANT SELECT ON order_totals TO ${ident(db.roles.agent)}`);
    },
    objects: () => ['public.order_totals'],
  },
  {
    rule: 'view-bypasses-rls',
    name: 'a view over a view, owned by the table owner without FORCE',
    setup: async (db) => {
      await orders(db);
      await db.admin.query(`ALTER TABLE orders NO FORCE ROW LEVEL SECURITY;
        CREATE VIEW inner_v WITH (security_invoker = true) AS SELECT * FROM orders;
        CREATE VIEW outer_v AS SELECT * FROM inner_v;
        ALTER VIEW inner_v OWNER TO ${ident(db.roles.owner)}; ALTER VIEW outer_v OWNER TO ${ident(db.roles.owner)};
        GRANT SELECT ON outer_v TO PUBLIC`);
    },
    objects: () => ['public.outer_v'],
    also: ['rls-not-forced'],
  },
  {
    rule: 'view-bypasses-rls',
    name: "a view owned by a role whose own policy shows every tenant (reporting_all ... USING (true))",
    setup: async (db) => {
      await orders(db);
      const reporting = ident(db.role('reporting'));
      await db.admin.query(`CREATE ROLE ${reporting} NOLOGIN; GRANT SELECT ON orders TO ${reporting};
        CREATE POLICY reporting_all ON orders FOR SELECT TO ${reporting} USING (true);
        CREATE SCHEMA rpt; CREATE VIEW rpt.all_orders AS SELECT * FROM public.orders;
        ALTER VIEW rpt.all_orders OWNER TO ${reporting};
        GRANT USAGE ON SCHEMA rpt TO ${ident(db.roles.agent)}; GRANT SELECT ON rpt.all_orders TO ${ident(db.roles.agent)};
        -- security_invoker is a boolean: 'yes' is true, so this one runs as its caller and is fine
        CREATE VIEW rpt.own_orders WITH (security_invoker = 'yes') AS SELECT * FROM public.orders;
        GRANT SELECT ON rpt.own_orders TO ${ident(db.roles.agent)};
        -- ... and 'off' is false: a superuser-owned view that returns every tenant
        CREATE VIEW rpt.every_order WITH (security_invoker = 'off') AS SELECT * FROM public.orders;
        GRANT SELECT ON rpt.every_order TO ${ident(db.roles.agent)}`);
    },
    objects: () => ['rpt.all_orders', 'rpt.every_order'],
  },
  {
    rule: 'matview-over-tenant-table',
    name: 'a materialized view the app can read',
    setup: async (db) => {
      await orders(db);
      await db.admin.query(`CREATE MATERIALIZED VIEW order_counts AS SELECT tenant_id, count(*) AS n FROM orders GROUP BY tenant_id;
        GRANT SELECT ON order_counts TO ${ident(db.roles.app)}`);
    },
    objects: () => ['public.order_counts'],
  },
  {
    rule: 'security-definer-exposed',
    name: 'a SECURITY DEFINER function with the default PUBLIC EXECUTE',
    setup: async (db) => {
      await orders(db);
      await db.admin.query(`CREATE FUNCTION public.count_orders(since date) RETURNS bigint LANGUAGE sql SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp AS $$ SELECT count(*) FROM public.orders $$`);
    },
    objects: () => ['public.count_orders(since date)'],
  },
  {
    rule: 'security-definer-search-path',
    name: 'a SECURITY DEFINER function without search_path, not executable by the fenced roles',
    setup: async (db) => {
      await db.admin.query(`CREATE FUNCTION public.helper() RETURNS int LANGUAGE sql SECURITY DEFINER AS $$ SELECT 1 $$;
        REVOKE EXECUTE ON FUNCTION public.helper() FROM PUBLIC`);
    },
    objects: () => ['public.helper()'],
  },
  {
    rule: 'security-definer-search-path',
    name: 'search_path without pg_temp last',
    setup: async (db) => {
      await db.admin.query(`CREATE FUNCTION public.helper() RETURNS int LANGUAGE sql SECURITY DEFINER
        SET search_path = public AS $$ SELECT 1 $$; REVOKE EXECUTE ON FUNCTION public.helper() FROM PUBLIC`);
    },
    objects: () => ['public.helper()'],
  },
  {
    rule: 'agent-role-dangerous-privilege',
    name: 'TRUNCATE/REFERENCES on a table, CREATE on the schema, TEMP on the database',
    setup: async (db) => {
      await orders(db);
      const agent = ident(db.roles.agent);
      await db.admin.query(`GRANT TRUNCATE, REFERENCES ON orders TO ${agent}; GRANT CREATE ON SCHEMA public TO ${agent};
        GRANT TEMPORARY ON DATABASE ${ident(db.name)} TO ${agent}`);
    },
    objects: (db) => [db.roles.agent, 'public', 'public.orders'],
  },
  {
    rule: 'agent-role-dangerous-privilege',
    name: 'pg_read_all_data membership and an owned large object',
    setup: async (db) => {
      await db.admin.query(`GRANT pg_read_all_data TO ${ident(db.roles.agent)}`);
      await db.admin.query(`DO $$ BEGIN EXECUTE format('ALTER LARGE OBJECT %s OWNER TO %I', lo_create(0), ${"'" + db.roles.agent + "'"}); END $$`);
    },
    objects: (db) => [db.roles.agent, db.roles.agent],
    also: ['signing-key-exposed'], // the membership, and the key it exposes
  },
  {
    rule: 'agent-role-dangerous-privilege',
    name: "TRUNCATE on tenantfence's own audit_log (outside --schema)",
    setup: (db) => db.admin.query(`GRANT TRUNCATE ON tenantfence.audit_log TO ${ident(db.roles.agent)}`).then(() => undefined),
    objects: () => ['tenantfence.audit_log'],
  },
  {
    rule: 'app-role-createrole',
    name: 'the app role has CREATEROLE (reported before PostgreSQL 16)',
    setup: (db) => db.admin.query(`ALTER ROLE ${ident(db.roles.app)} CREATEROLE`).then(() => undefined),
    objects: async (db) => ((await serverVersion(db)) < 160000 ? [db.roles.app] : []),
  },
  {
    rule: 'app-role-createrole',
    name: 'the agent role can SET ROLE to a CREATEROLE role (reported before PostgreSQL 16)',
    setup: async (db) => {
      const admin = ident(db.role('tf_roles'));
      await db.admin.query(`CREATE ROLE ${admin} NOLOGIN CREATEROLE; GRANT ${admin} TO ${ident(db.roles.agent)}`);
    },
    objects: async (db) => ((await serverVersion(db)) < 160000 ? [db.roles.agent] : []),
  },
  {
    rule: 'app-role-owns-table',
    name: 'an owner role the app created with CREATEROLE (a membership from PostgreSQL 16)',
    setup: async (db) => {
      await orders(db);
      const made = ident(db.role('tf_made'));
      await db.admin.query(`ALTER ROLE ${ident(db.roles.app)} CREATEROLE; SET ROLE ${ident(db.roles.app)};
        CREATE ROLE ${made} NOLOGIN; RESET ROLE; ALTER TABLE orders OWNER TO ${made}`);
    },
    objects: async (db) => ((await serverVersion(db)) >= 160000 ? ['public.orders'] : []),
    also: ['app-role-createrole'],
  },
  {
    rule: 'signing-key-exposed',
    name: 'the app role in pg_read_all_data and pg_write_all_data',
    setup: (db) => db.admin.query(`GRANT pg_read_all_data, pg_write_all_data TO ${ident(db.roles.app)}`).then(() => undefined),
    objects: (db) => [db.roles.app],
  },
  {
    rule: 'signing-key-exposed',
    name: 'SELECT on tenantfence.keys granted to PUBLIC, and INSERT to a role the app belongs to',
    setup: async (db) => {
      const group = ident(db.role('tf_keys'));
      await db.admin.query(`GRANT SELECT ON tenantfence.keys TO PUBLIC; CREATE ROLE ${group} NOLOGIN;
        GRANT INSERT ON tenantfence.keys TO ${group}; GRANT ${group} TO ${ident(db.roles.app)}`);
    },
    objects: (db) => [db.roles.agent, db.roles.app],
  },
  {
    rule: 'role-can-read-other-sessions',
    name: 'the app role in pg_monitor',
    setup: (db) => db.admin.query(`GRANT pg_monitor TO ${ident(db.roles.app)}`).then(() => undefined),
    objects: (db) => [db.roles.app],
  },
  {
    rule: 'role-reaches-admin',
    name: 'the agent role granted tenantfence_admin, the app role through a role it can become',
    setup: async (db) => {
      const support = db.role('tf_support');
      await db.admin.query(`GRANT tenantfence_admin TO ${ident(db.roles.agent)}; CREATE ROLE ${ident(support)} NOLOGIN;
        GRANT tenantfence_admin TO ${ident(support)}; GRANT ${ident(support)} TO ${ident(db.roles.app)}`);
    },
    objects: (db) => [db.roles.agent, db.roles.app],
  },
  {
    rule: 'session-functions-exposed',
    name: 'PUBLIC may terminate backends again (a restore of the defaults)',
    setup: (db) => db.admin.query('GRANT EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint) TO PUBLIC').then(() => undefined),
    objects: () => ['pg_catalog.pg_terminate_backend(integer, bigint)'],
  },
  {
    rule: 'session-functions-exposed',
    name: 'the app role is granted lo_get and the agent pg_stat_get_activity by name',
    setup: (db) => db.admin.query(`GRANT EXECUTE ON FUNCTION pg_catalog.lo_get(oid) TO ${ident(db.roles.app)};
      GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) TO ${ident(db.roles.agent)}`).then(() => undefined),
    objects: () => ['pg_catalog.lo_get(oid)', 'pg_catalog.pg_stat_get_activity(integer)'],
  },
  {
    // Every function init's lockdown takes (src/sql/lockdown.ts), and no other: the two lists agree.
    rule: 'session-functions-exposed',
    name: "a database init's lockdown never ran on: every function it takes is reported",
    setup: (db) => db.admin.query(`DO $$ DECLARE f regprocedure; BEGIN
      FOR f IN SELECT oid FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace AND proname = ANY (ARRAY[${lockdownNames().map(literal).join(', ')}]) LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f);
      END LOOP; END $$`).then(() => undefined),
    objects: async (db) => (await db.admin.query<{ f: string }>(
      `SELECT format('pg_catalog.%s(%s)', proname, oidvectortypes(proargtypes)) AS f
         FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace AND proname = ANY ($1)`, [lockdownNames()])).rows.map((r) => r.f),
  },
  {
    rule: 'fenced-role-settings',
    name: 'settings stored on both roles, for every database and for this one',
    setup: (db) => db.admin.query(`ALTER ROLE ${ident(db.roles.app)} SET DateStyle = 'SQL, DMY';
      ALTER ROLE ${ident(db.roles.app)} SET default_transaction_read_only = on;
      ALTER ROLE ${ident(db.roles.agent)} IN DATABASE ${ident(db.name)} SET row_security = off`).then(() => undefined),
    objects: (db) => [db.roles.app, db.roles.app, db.roles.agent],
  },
  {
    rule: 'fenced-role-settings',
    name: 'settings the app role stored on itself (ALTER ROLE CURRENT_USER SET), and a custom one',
    setup: async (db) => {
      const app = new pg.Client(urlForRole(db.url, db.roles.app, db.password));
      await db.admin.query(`ALTER ROLE ${ident(db.roles.app)} PASSWORD ${literal(db.password)}`);
      await app.connect();
      try {
        await app.query(`ALTER ROLE CURRENT_USER SET statement_timeout = '1ms'`);
        await app.query(`ALTER ROLE CURRENT_USER SET search_path = evil, public`);
      } finally {
        await app.end();
      }
      // A custom name with capitals and a value with '=': the RESET must quote the one and split on the first '='.
      await db.admin.query(`ALTER ROLE ${ident(db.roles.app)} SET "app.Mode" = 'x=y'`);
    },
    objects: (db) => [db.roles.app, db.roles.app, db.roles.app],
  },
];
