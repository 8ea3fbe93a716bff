-- rule_versions keeps every activated version of a region's rule files, for
-- audit and rollback: what (hash and the files' content), when, by whom and
-- how (startup, watch, put, rollback). Append-only: a rollback is a new row.
CREATE TABLE rule_versions (
	id           INTEGER PRIMARY KEY,
	region       TEXT NOT NULL,
	hash         TEXT NOT NULL,
	files        TEXT NOT NULL CHECK (json_valid(files)),
	activated_at TEXT NOT NULL,
	activated_by TEXT NOT NULL DEFAULT '',
	source       TEXT NOT NULL DEFAULT ''
);

CREATE INDEX rule_versions_region ON rule_versions (region, id);
CREATE INDEX rule_versions_hash ON rule_versions (region, hash, id);

CREATE TRIGGER rule_versions_no_update BEFORE UPDATE ON rule_versions
BEGIN
	SELECT RAISE(ABORT, 'rule_versions is append-only');
END;

CREATE TRIGGER rule_versions_no_delete BEFORE DELETE ON rule_versions
BEGIN
	SELECT RAISE(ABORT, 'rule_versions is append-only');
END;
