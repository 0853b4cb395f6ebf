/** Cases for the table-level rules: RLS state, keys, indexes, sequences, ownership, triggers. */
import { ident } from '../../../src/sql/quote.ts';
import { protectTables, tenantTable, type RuleCase } from '../support.ts';

export const tableCases: RuleCase[] = [
  {
    rule: 'rls-disabled',
    name: 'a tenant table nobody protected',
    setup: (db) => tenantTable(db, 'orders'),
    objects: () => ['public.orders'],
  },
  {
    rule: 'rls-not-forced',
    name: 'protected, then NO FORCE',
    setup: async (db) => {
      await tenantTable(db, 'orders');
      await protectTables(db, 'orders');
      await db.admin.query('ALTER TABLE orders NO FORCE ROW LEVEL SECURITY');
    },
    objects: () => ['public.orders'],
  },
  {
    rule: 'rls-enabled-no-policy',
    name: 'RLS on and forced, no policy',
    setup: async (db) => {
      await tenantTable(db, 'orders');
      await db.admin.query('ALTER TABLE orders ENABLE ROW LEVEL SECURITY; ALTER TABLE orders FORCE ROW LEVEL SECURITY');
    },
    objects: () => ['public.orders'],
  },
  {
    rule: 'no-tenant-leading-index',
    name: 'key (id, tenant_id) and protect index dropped',
    setup: async (db) => {
      await tenantTable(db, 'orders', '', 'PRIMARY KEY (id, tenant_id)');
      await protectTables(db, 'orders');
      await db.admin.query('DROP INDEX orders_tenant_idx');
    },
    objects: () => ['public.orders'],
  },
  {
    rule: 'global-unique-on-tenant-table',
    name: 'UNIQUE (email) constraint',
    setup: async (db) => {
      await tenantTable(db, 'accounts', 'email text NOT NULL UNIQUE');
      await protectTables(db, 'accounts');
    },
    objects: () => ['public.accounts'],
  },
  {
    rule: 'global-unique-on-tenant-table',
    name: 'partial unique index',
    setup: async (db) => {
      await tenantTable(db, 'accounts', 'email text NOT NULL');
      await db.admin.query(`CREATE UNIQUE INDEX accounts_email_idx ON accounts (email) WHERE email <> ''`);
      await protectTables(db, 'accounts');
    },
    objects: () => ['public.accounts'],
  },
  {
    rule: 'global-unique-on-tenant-table',
    name: "the seed's bigserial primary key",
    setup: async (db) => {
      await tenantTable(db, 'conversations', 'seq bigserial', 'PRIMARY KEY (seq)');
      await protectTables(db, 'conversations');
    },
    objects: () => ['public.conversations'],
    also: ['sequence-shared-across-tenants'],
  },
  {
    rule: 'global-unique-on-tenant-table',
    name: 'an exclusion constraint without the tenant column WITH =',
    setup: async (db) => {
      // btree exclusion (WITH = only) needs no extension; a gist one would need btree_gist for uuid
      await tenantTable(db, 'bookings', 'room int NOT NULL, CONSTRAINT one_per_room EXCLUDE USING btree (room WITH =)');
      await protectTables(db, 'bookings');
    },
    objects: () => ['public.bookings'],
  },
  {
    rule: 'fk-without-tenant',
    name: 'child references parent (id) only',
    setup: async (db) => {
      await tenantTable(db, 'parents', 'UNIQUE (id)');
      await tenantTable(db, 'children', 'parent_id uuid REFERENCES parents (id) ON DELETE CASCADE');
      await protectTables(db, 'parents', 'children');
    },
    objects: () => ['public.children'],
    also: ['global-unique-on-tenant-table'], // parents (id) is the global key the foreign key needs
  },
  {
    rule: 'sequence-shared-across-tenants',
    name: 'identity column',
    setup: async (db) => {
      await tenantTable(db, 'orders', 'n bigint GENERATED ALWAYS AS IDENTITY');
      await protectTables(db, 'orders');
    },
    objects: () => ['public.orders'],
  },
  {
    rule: 'sequence-shared-across-tenants',
    name: 'bigserial column',
    setup: async (db) => {
      await tenantTable(db, 'orders', 'n bigserial');
      await protectTables(db, 'orders');
    },
    objects: () => ['public.orders'],
  },
  {
    rule: 'sequence-shared-across-tenants',
    name: "DEFAULT nextval('order_no') on a sequence the column does not own",
    setup: async (db) => {
      await db.admin.query('CREATE SEQUENCE order_no');
      await tenantTable(db, 'orders', "no bigint NOT NULL DEFAULT nextval('order_no')");
      await tenantTable(db, 'invoices', "no bigint NOT NULL DEFAULT nextval('order_no')");
      await protectTables(db, 'orders', 'invoices');
    },
    objects: () => ['public.invoices', 'public.orders'],
  },
  {
    rule: 'app-role-owns-table',
    name: 'protected table handed to the app role',
    setup: async (db) => {
      await tenantTable(db, 'orders');
      await protectTables(db, 'orders');
      await db.admin.query(`ALTER TABLE orders OWNER TO ${ident(db.roles.app)}`);
    },
    objects: () => ['public.orders'],
  },
  {
    rule: 'trigger-security-definer-on-tenant-table',
    name: 'SECURITY DEFINER trigger function',
    setup: async (db) => {
      await tenantTable(db, 'orders');
      await protectTables(db, 'orders');
      await db.admin.query(`CREATE FUNCTION public.stamp() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp AS $$ BEGIN RETURN NEW; END $$`);
      await db.admin.query('CREATE TRIGGER stamp BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION public.stamp()');
    },
    objects: () => ['public.orders'],
  },
];
