-- A setting stored on the app or agent role (ALTER ROLE ... SET, for every database or this one)
-- is the default of every connection that logs in as it: every tenant's. Any session of the role
-- can store one on itself (ALTER ROLE CURRENT_USER SET needs no privilege for user-settable
-- parameters), so SQL in one request can change every later one: read-only mode, a tiny
-- statement_timeout, row_security = off (every fenced request fails), a search_path, a DateStyle.
-- The fence engine pins the settings that matter in each transaction; code outside it, and any
-- setting it does not pin, still runs with the stored default. One finding per stored setting.
SELECT f.rolname AS object,
       format('The %s role %s has %s = %s stored%s (ALTER ROLE ... SET): every connection that logs in as it starts with this setting, every tenant''s.',
              f.which, f.rolname, split_part(c.setting, '=', 1), substr(c.setting, strpos(c.setting, '=') + 1),
              CASE WHEN s.setdatabase = 0 THEN '' ELSE format(' for database %s', current_database()) END) AS detail,
       format('ALTER ROLE %I%s RESET %I;', f.rolname,
              CASE WHEN s.setdatabase = 0 THEN '' ELSE format(' IN DATABASE %I', current_database()) END,
              split_part(c.setting, '=', 1)) AS remediation,
       format('%s:%s', CASE WHEN s.setdatabase = 0 THEN '*' ELSE 'db' END, lower(split_part(c.setting, '=', 1))) AS key
  FROM fenced f
  JOIN pg_db_role_setting s ON s.setrole = f.oid
                           AND s.setdatabase IN (0, (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
 CROSS JOIN LATERAL unnest(s.setconfig) AS c(setting)
