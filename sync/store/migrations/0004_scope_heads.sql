-- scope_sums.head: the highest log seq that changed a winner of a row of the
-- scope, or added a row to it. A pull whose cursor is at or past the head of
-- every scope it walks has nothing to read, so an empty poll no longer scans
-- the log written since its cursor in everyone else's scopes.
ALTER TABLE scope_sums ADD COLUMN head INTEGER NOT NULL DEFAULT 0;
-- Existing databases: every scope's head is the top of the log (safe: a head
-- may be too high, never too low), and every scope with rows has a row here.
INSERT OR IGNORE INTO scope_sums (scope, sum) SELECT DISTINCT scope, 0 FROM row_scopes;
UPDATE scope_sums SET head = (SELECT coalesce(max(seq), 0) FROM change_log);
