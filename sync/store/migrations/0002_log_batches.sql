-- Leaner log and state rows (component "cases"), measured with the store's
-- BenchmarkPush against BenchmarkBareUpsert: a push writes the facts of its
-- batch once, and the winner's stamp is read from the log like its value.

-- log_batches holds, once per write transaction that logged anything, who
-- wrote, from which device, in which batch, and when the server received it.
CREATE TABLE log_batches (
	id          INTEGER PRIMARY KEY,
	user_id     TEXT NOT NULL,
	device_id   TEXT NOT NULL,
	batch_id    TEXT NOT NULL,
	received_at INTEGER NOT NULL
);
INSERT INTO log_batches (user_id, device_id, batch_id, received_at)
	SELECT user_id, device_id, batch_id, received_at FROM change_log
	GROUP BY user_id, device_id, batch_id, received_at ORDER BY min(seq);

-- change_log keeps every accepted write, winner or loser, once; batch names
-- its log_batches row. seq is handed out by the writer (max + 1 in its
-- transaction); rows are never deleted, so a seq is never reused.
CREATE TABLE change_log_v2 (
	seq        INTEGER PRIMARY KEY,
	collection TEXT NOT NULL,
	id         TEXT NOT NULL,
	field      TEXT NOT NULL,
	value      TEXT NOT NULL,
	hlc        TEXT NOT NULL,
	base       TEXT NOT NULL DEFAULT '',
	batch      INTEGER NOT NULL,
	outcome    TEXT NOT NULL CHECK (outcome IN ('applied', 'stale'))
);
INSERT INTO change_log_v2 (seq, collection, id, field, value, hlc, base, batch, outcome)
	SELECT l.seq, l.collection, l.id, l.field, l.value, l.hlc, l.base, b.id, l.outcome
	FROM change_log l JOIN log_batches b ON b.user_id = l.user_id AND b.device_id = l.device_id
		AND b.batch_id = l.batch_id AND b.received_at = l.received_at;
DROP TABLE change_log;
ALTER TABLE change_log_v2 RENAME TO change_log;
CREATE INDEX change_log_row ON change_log (id);
CREATE TRIGGER change_log_no_update BEFORE UPDATE ON change_log
BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;
CREATE TRIGGER change_log_no_delete BEFORE DELETE ON change_log
BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;
CREATE TRIGGER log_batches_no_update BEFORE UPDATE ON log_batches
BEGIN SELECT RAISE(ABORT, 'log_batches is append-only'); END;
CREATE TRIGGER log_batches_no_delete BEFORE DELETE ON log_batches
BEGIN SELECT RAISE(ABORT, 'log_batches is append-only'); END;

-- fields holds the current winner of every field as the seq of its log
-- entry, which holds its value and stamp.
CREATE TABLE fields_v2 (
	collection TEXT NOT NULL,
	id         TEXT NOT NULL,
	field      TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	PRIMARY KEY (collection, id, field)
) WITHOUT ROWID;
INSERT INTO fields_v2 (collection, id, field, seq) SELECT collection, id, field, seq FROM fields;
DROP TABLE fields;
ALTER TABLE fields_v2 RENAME TO fields;
