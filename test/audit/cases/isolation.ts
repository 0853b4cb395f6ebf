/**
 * Cases for the rules added by issue 11: tenant data the other rules do not see (child tables,
 * foreign data, change feeds, default grants), policy helpers that can be steered (writable pins,
 * IMMUTABLE context, shadowable names), roles that replicate, LEAKPROOF functions.
 */
import { ident } from '../../../src/sql/quote.ts';
import { protectTables, replacePolicy, tenantTable, type RuleCase } from '../support.ts';
import type { TestDatabase } from '../../support/db.ts';

async function orders(db: TestDatabase, extra = '', key?: string): Promise<void> {
  await tenantTable(db, 'orders', extra, key);
  await protectTables(db, 'orders');
}

/** orders with its tenantfence policy replaced by one pinning the tenant to `pin` (both sides). */
async function ordersPinnedTo(db: TestDatabase, pin: string): Promise<void> {
  await orders(db);
  await replacePolicy(db, 'orders', `CREATE POLICY pinned ON orders USING (tenant_id = (SELECT ${pin})) WITH CHECK (tenant_id = (SELECT ${pin}))`);
}

/** A lookup table outside the tenant column's reach: who belongs to which tenant. */
async function appUsers(db: TestDatabase): Promise<void> {
  await db.admin.query(`CREATE TABLE public.app_users (username text PRIMARY KEY, org_id uuid NOT NULL);
    GRANT SELECT ON public.app_users TO ${ident(db.roles.app)}, ${ident(db.roles.agent)}`);
}

/** The tenant pinned to `public.my_org()`, a helper that looks the session's user up in app_users. */
function myOrgPin(name: string, then: (db: TestDatabase) => string): RuleCase {
  return {
    rule: 'policy-pin-writable',
    name,
    setup: async (db) => {
      await appUsers(db);
      await db.admin.query(`CREATE FUNCTION public.my_org() RETURNS uuid LANGUAGE sql STABLE
        AS $$ SELECT org_id FROM public.app_users WHERE username = session_user $$`);
      await db.admin.query(then(db));
      await ordersPinnedTo(db, 'public.my_org()');
    },
    objects: () => ['public.orders'],
  };
}

export const isolationCases: RuleCase[] = [
  {
    rule: 'tenant-data-without-tenant-column',
    name: 'order_items keyed through orders, and notes keyed through order_items, RLS off and readable',
    setup: async (db) => {
      await orders(db, 'UNIQUE (id)');
      await db.admin.query(`CREATE TABLE order_items (id uuid PRIMARY KEY, order_id uuid NOT NULL REFERENCES orders (id), sku text);
        CREATE TABLE order_item_notes (id uuid PRIMARY KEY, item_id uuid NOT NULL REFERENCES order_items (id), note text);
        GRANT SELECT, INSERT ON order_items TO ${ident(db.roles.app)}; GRANT SELECT ON order_item_notes TO ${ident(db.roles.agent)}`);
    },
    objects: () => ['public.order_item_notes', 'public.order_items'],
    also: ['global-unique-on-tenant-table'], // UNIQUE (id) on orders, which the children reference
  },
  {
    rule: 'policy-pin-writable',
    name: 'tenant_id = (SELECT org_id FROM app_users WHERE username = current_user) with UPDATE on app_users',
    setup: async (db) => {
      await appUsers(db);
      await db.admin.query(`GRANT UPDATE ON public.app_users TO ${ident(db.roles.app)}`);
      await ordersPinnedTo(db, 'org_id FROM public.app_users WHERE username = current_user');
    },
    objects: () => ['public.orders'],
  },
  myOrgPin("a helper's body reads app_users, which the agent may INSERT into",
    (db) => `GRANT INSERT ON public.app_users TO ${ident(db.roles.agent)}`),
  myOrgPin('the pin function is owned by the app role', (db) => `ALTER FUNCTION public.my_org() OWNER TO ${ident(db.roles.app)}`),
  {
    rule: 'policy-pin-writable',
    name: 'the pin reads current_user and the agent can SET ROLE to another role',
    setup: async (db) => {
      await appUsers(db);
      const other = ident(db.role('tf_other'));
      await db.admin.query(`CREATE ROLE ${other} NOLOGIN; GRANT ${other} TO ${ident(db.roles.agent)}`);
      await ordersPinnedTo(db, 'org_id FROM public.app_users WHERE username = current_user');
    },
    objects: () => ['public.orders'],
  },
  {
    rule: 'policy-immutable-context',
    name: 'an IMMUTABLE wrapper around current_tenant(), reached through a STABLE helper',
    setup: async (db) => {
      await db.admin.query(`CREATE FUNCTION public.inner_ctx() RETURNS uuid LANGUAGE sql IMMUTABLE
          AS $$ SELECT tenantfence.current_tenant()::uuid $$;
        CREATE FUNCTION public.outer_ctx() RETURNS uuid LANGUAGE plpgsql STABLE
          AS $$ BEGIN RETURN public.inner_ctx(); END $$`);
      await ordersPinnedTo(db, 'public.outer_ctx()');
    },
    objects: () => ['public.inner_ctx()'],
  },
  {
    rule: 'policy-function-shadowable',
    name: 'a helper names memberships without a schema and the app role has TEMP',
    setup: async (db) => {
      await db.admin.query(`CREATE TABLE public.memberships (username text PRIMARY KEY, org_id uuid NOT NULL);
        GRANT SELECT ON public.memberships TO ${ident(db.roles.app)};
        GRANT TEMPORARY ON DATABASE ${ident(db.name)} TO ${ident(db.roles.app)};
        CREATE FUNCTION public.member_org() RETURNS uuid LANGUAGE sql STABLE
          AS $$ SELECT org_id FROM memberships WHERE username = session_user $$`);
      await ordersPinnedTo(db, 'public.member_org()');
    },
    objects: () => ['public.member_org()'],
  },
  {
    rule: 'role-replication',
    name: 'the app role has REPLICATION',
    setup: (db) => db.admin.query(`ALTER ROLE ${ident(db.roles.app)} REPLICATION`).then(() => undefined),
    objects: (db) => [db.roles.app],
  },
  {
    rule: 'role-replication',
    name: 'the agent role can SET ROLE to a REPLICATION role',
    setup: async (db) => {
      const cdc = ident(db.role('tf_cdc'));
      await db.admin.query(`CREATE ROLE ${cdc} NOLOGIN REPLICATION; GRANT ${cdc} TO ${ident(db.roles.agent)}`);
    },
    objects: (db) => [db.roles.agent],
  },
  {
    rule: 'leakproof-function',
    name: 'a LEAKPROOF function that raises a notice with its argument, executable by PUBLIC',
    setup: async (db) => {
      await db.admin.query(`CREATE FUNCTION public.leaky(v text) RETURNS boolean LANGUAGE plpgsql LEAKPROOF
        AS $$ BEGIN RAISE NOTICE '%', v; RETURN true; END $$`);
    },
    objects: () => ['public.leaky(v text)'],
  },
  {
    rule: 'foreign-data-access',
    name: 'a readable foreign table, a user mapping for the app, USAGE on the server for the agent',
    setup: async (db) => {
      await db.admin.query(`CREATE FOREIGN DATA WRAPPER tf_fdw; CREATE SERVER tf_loop FOREIGN DATA WRAPPER tf_fdw;
        CREATE USER MAPPING FOR ${ident(db.roles.app)} SERVER tf_loop OPTIONS (user 'postgres');
        CREATE FOREIGN TABLE public.remote_orders (tenant_id uuid, id uuid) SERVER tf_loop;
        GRANT SELECT ON public.remote_orders TO ${ident(db.roles.agent)};
        GRANT USAGE ON FOREIGN SERVER tf_loop TO ${ident(db.roles.agent)}`);
    },
    objects: (db) => ['public.remote_orders', db.roles.agent, db.roles.app],
  },
  {
    rule: 'change-feed-exposes-tenant-rows',
    name: 'a trigger that pg_notify()s NEW, a publication of orders, a publication FOR ALL TABLES',
    setup: async (db) => {
      await orders(db);
      await db.admin.query(`CREATE FUNCTION public.announce() RETURNS trigger LANGUAGE plpgsql
          AS $$ BEGIN PERFORM pg_notify('orders', row_to_json(NEW)::text); RETURN NEW; END $$;
        CREATE TRIGGER announce AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION public.announce();
        CREATE PUBLICATION tf_orders FOR TABLE orders; CREATE PUBLICATION tf_everything FOR ALL TABLES`);
    },
    objects: () => ['public.orders', 'tf_everything', 'tf_orders'],
  },
  {
    rule: 'default-privileges-open-tables',
    name: "the owner's future tables granted to PUBLIC, and in schema public to the agent",
    setup: async (db) => {
      const owner = ident(db.roles.owner);
      await db.admin.query(`ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} GRANT SELECT, INSERT ON TABLES TO PUBLIC;
        ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA public GRANT SELECT ON TABLES TO ${ident(db.roles.agent)}`);
    },
    objects: (db) => [db.roles.owner, db.roles.owner],
  },
  {
    rule: 'server-rls-cve',
    name: 'a server with every listed fix reports nothing (versions: test/audit/server-cve.test.ts)',
    setup: async () => undefined,
    objects: () => [],
  },
];

/** Issue 11, item 2: privileges over whole tables, schemas, the database and the server. */
export const privilegeCases: RuleCase[] = [
  {
    rule: 'app-role-dangerous-privilege',
    name: 'TRUNCATE on a tenant table, a schema owned by the app role, SET on session_replication_role',
    setup: async (db) => {
      await orders(db);
      const app = ident(db.roles.app);
      await db.admin.query(`GRANT TRUNCATE ON orders TO ${app}; CREATE SCHEMA app_stuff AUTHORIZATION ${app};
        GRANT SET ON PARAMETER session_replication_role TO ${app}`);
    },
    objects: (db) => ['app_stuff', db.roles.app, 'public.orders'],
  },
  {
    rule: 'app-role-dangerous-privilege',
    name: 'the database owned by the app role',
    setup: (db) => db.admin.query(`ALTER DATABASE ${ident(db.name)} OWNER TO ${ident(db.roles.app)}`).then(() => undefined),
    objects: (db) => [db.name],
  },
];
