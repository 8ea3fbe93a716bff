-- The case data of one region (component "cases"). Times are unix
-- milliseconds (UTC); values are the raw JSON of the field.

-- fields holds the current winner of every field: one row per field.
-- seq is the change_log seq of the winning write, which holds its value:
-- every value is stored once, in the log (see docs/benchmarks.md).
CREATE TABLE fields (
	collection TEXT NOT NULL,
	id         TEXT NOT NULL,
	field      TEXT NOT NULL,
	hlc        TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	PRIMARY KEY (collection, id, field)
) WITHOUT ROWID;
-- No index on fields.seq: an incremental pull walks the log from its cursor
-- (the log's primary key) and keeps the entries that are still winners.

-- change_log keeps every accepted write, winner or loser, once.
CREATE TABLE change_log (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	collection  TEXT NOT NULL,
	id          TEXT NOT NULL,
	field       TEXT NOT NULL,
	value       TEXT NOT NULL,
	hlc         TEXT NOT NULL,
	base        TEXT NOT NULL DEFAULT '',
	user_id     TEXT NOT NULL,
	device_id   TEXT NOT NULL,
	batch_id    TEXT NOT NULL,
	received_at INTEGER NOT NULL,
	outcome     TEXT NOT NULL CHECK (outcome IN ('applied', 'stale'))
);
-- By row id only (ids are UUIDs): History and duplicate detection filter
-- the few entries of one row; a narrow index keeps appends cheap.
CREATE INDEX change_log_row ON change_log (id);
CREATE TRIGGER change_log_no_update BEFORE UPDATE ON change_log
BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;
CREATE TRIGGER change_log_no_delete BEFORE DELETE ON change_log
BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;

-- row_scopes names the scopes a row belongs to (a referral linked to a
-- family is in intake:<region> and family:<family_id>). Every stored row
-- has at least one.
CREATE TABLE row_scopes (
	collection TEXT NOT NULL,
	id         TEXT NOT NULL,
	scope      TEXT NOT NULL,
	PRIMARY KEY (collection, id, scope)
) WITHOUT ROWID;
CREATE INDEX row_scopes_scope ON row_scopes (scope, collection, id);

-- scope_sums holds, per scope, the XOR of crdt.FieldSum over the winners of
-- its rows, as a 64-bit pattern in a signed integer. region:<name> covers
-- every row.
CREATE TABLE scope_sums (
	scope TEXT PRIMARY KEY,
	sum   INTEGER NOT NULL
) WITHOUT ROWID;

-- batches remembers the first answer to every push, for replays.
CREATE TABLE batches (
	device_id   TEXT NOT NULL,
	batch_id    TEXT NOT NULL,
	response    TEXT NOT NULL,
	received_at INTEGER NOT NULL,
	PRIMARY KEY (device_id, batch_id)
) WITHOUT ROWID;

-- family_access is derived from trajectories (lead, co) and from new
-- families a coach pushed (creator, until the family has a trajectory).
CREATE TABLE family_access (
	family_id     TEXT NOT NULL,
	user_id       TEXT NOT NULL,
	trajectory_id TEXT NOT NULL DEFAULT '',
	kind          TEXT NOT NULL CHECK (kind IN ('lead', 'co', 'creator')),
	PRIMARY KEY (family_id, user_id, trajectory_id, kind)
) WITHOUT ROWID;
CREATE INDEX family_access_user ON family_access (user_id, family_id);

-- former_access remembers who lost a family, so that their late writes are
-- quarantined rather than refused.
CREATE TABLE former_access (
	family_id TEXT NOT NULL,
	user_id   TEXT NOT NULL,
	lost_at   INTEGER NOT NULL,
	PRIMARY KEY (family_id, user_id)
) WITHOUT ROWID;
CREATE INDEX former_access_user ON former_access (user_id, family_id);

-- evictions: scopes a device was told to drop, and its proof of doing so.
CREATE TABLE evictions (
	id         INTEGER PRIMARY KEY,
	device_id  TEXT NOT NULL,
	scope      TEXT NOT NULL,
	evicted_at INTEGER NOT NULL,
	proof      TEXT,
	proven_at  INTEGER
);
CREATE INDEX evictions_device ON evictions (device_id, scope);
CREATE INDEX evictions_scope ON evictions (scope);

-- quarantine keeps writes to a family the writer has lost, for the
-- region's coordinator to accept or discard.
CREATE TABLE quarantine (
	id          INTEGER PRIMARY KEY,
	device_id   TEXT NOT NULL,
	user_id     TEXT NOT NULL,
	batch_id    TEXT NOT NULL,
	collection  TEXT NOT NULL,
	row_id      TEXT NOT NULL,
	field       TEXT NOT NULL,
	value       TEXT NOT NULL,
	hlc         TEXT NOT NULL,
	scope       TEXT NOT NULL,
	reason      TEXT NOT NULL,
	received_at INTEGER NOT NULL,
	status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'discarded')),
	decided_by  TEXT NOT NULL DEFAULT '',
	decided_at  INTEGER
);
CREATE INDEX quarantine_status ON quarantine (status, id);
CREATE UNIQUE INDEX quarantine_write ON quarantine (collection, row_id, field, hlc, device_id);

-- conflicts: concurrent edits of one text field; both writes stay in the log.
CREATE TABLE conflicts (
	id          INTEGER PRIMARY KEY,
	collection  TEXT NOT NULL,
	row_id      TEXT NOT NULL,
	field       TEXT NOT NULL,
	winner_seq  INTEGER NOT NULL,
	loser_seq   INTEGER NOT NULL,
	detected_at INTEGER NOT NULL
);
CREATE INDEX conflicts_row ON conflicts (collection, row_id);
