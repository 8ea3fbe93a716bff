-- audit_log is append-only: every login, push, pull, case read, decision,
-- rule change, export and revocation, who did it, from which device.
CREATE TABLE audit_log (
	id          INTEGER PRIMARY KEY,
	at          TEXT NOT NULL,
	user_id     TEXT NOT NULL DEFAULT '',
	username    TEXT NOT NULL DEFAULT '',
	role        TEXT NOT NULL DEFAULT '',
	device_id   TEXT NOT NULL DEFAULT '',
	action      TEXT NOT NULL,
	region      TEXT NOT NULL DEFAULT '',
	target_kind TEXT NOT NULL DEFAULT '',
	target_id   TEXT NOT NULL DEFAULT '',
	detail      TEXT CHECK (detail IS NULL OR json_valid(detail)),
	ip          TEXT NOT NULL DEFAULT '',
	request_id  TEXT NOT NULL DEFAULT ''
);

CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_user ON audit_log (user_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_target ON audit_log (target_id, id);
CREATE INDEX audit_log_region ON audit_log (region, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;
