-- Two ways a tenant table's rows leave the fence as they are written:
--   a trigger whose function sends NOTIFY (pg_notify() or the NOTIFY command, from source text)
--   and names the row (NEW or OLD): any session may LISTEN on any channel, no privilege needed,
--   so every tenant's writes reach whoever listens;
--   a publication that includes the table (listed, by schema, or FOR ALL TABLES): logical
--   replication and decoding send every row to the subscriber, with no row level security.
-- One finding per trigger (on its table) and per publication (listing its tenant tables).
WITH notify_triggers AS (
  SELECT t.object, tg.tgname::text AS trigger, t.sql_name, n.nspname::text AS fschema, p.proname::text AS fname
    FROM tenant_tables t
    JOIN pg_trigger tg ON tg.tgrelid = t.oid AND NOT tg.tgisinternal
    JOIN pg_proc p ON p.oid = tg.tgfoid
    JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE p.prosrc ~* '\m(pg_notify\s*\(|notify\s+["\w])' AND p.prosrc ~* '\m(new|old)\M'
),
published AS (
  SELECT pub.pubname::text COLLATE "C" AS pubname, pub.puballtables,
         array_agg(t.object ORDER BY t.object) AS objects,
         array_agg(t.sql_name ORDER BY t.object) FILTER (WHERE EXISTS (
           SELECT 1 FROM pg_publication_rel pr WHERE pr.prpubid = pub.oid AND pr.prrelid = t.oid)) AS listed,
         -- FOR TABLES IN SCHEMA exists from PostgreSQL 15 (pg_publication_namespace)
         array_agg(DISTINCT quote_ident(t.schema)) FILTER (WHERE NOT pub.puballtables AND NOT EXISTS (
           SELECT 1 FROM pg_publication_rel pr WHERE pr.prpubid = pub.oid AND pr.prrelid = t.oid)) AS schemas
    FROM pg_publication pub
    JOIN pg_publication_tables pt ON pt.pubname = pub.pubname
    JOIN tenant_tables t ON t.schema = pt.schemaname AND t.name = pt.tablename
   GROUP BY pub.oid, pub.pubname, pub.puballtables
)
SELECT object,
       format('Trigger %s on %s calls %s.%s(), which sends NOTIFY with the row: any session can LISTEN, so every tenant''s writes reach it.',
              trigger, object, fschema, fname) AS detail,
       format(E'DROP TRIGGER %I ON %s;\n-- to keep a change feed, notify only a row id on a channel the fence does not need to hide, and let listeners read the row under their own tenant policy',
              trigger, sql_name) AS remediation,
       'trigger:' || trigger AS key
  FROM notify_triggers
UNION ALL
SELECT pubname,
       format('Publication %s includes tenant table(s) %s: replication and logical decoding send every tenant''s rows to the subscriber, without row level security.',
              pubname, array_to_string(objects, ', ')),
       CASE WHEN puballtables THEN format(E'DROP PUBLICATION %I;\n-- FOR ALL TABLES cannot leave tables out: recreate it FOR TABLE with the tables the subscriber may see', pubname)
            ELSE concat_ws(E'\n',
                           CASE WHEN listed IS NOT NULL THEN format('ALTER PUBLICATION %I DROP TABLE %s;', pubname, array_to_string(listed, ', ')) END,
                           CASE WHEN schemas IS NOT NULL THEN format('ALTER PUBLICATION %I DROP TABLES IN SCHEMA %s;', pubname, array_to_string(schemas, ', ')) END)
       END,
       'publication:' || pubname
  FROM published
