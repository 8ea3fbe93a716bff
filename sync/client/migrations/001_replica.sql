-- The local replica of one device. See doc.go for the algorithm.

-- fields holds the current winning write of every field the device knows.
CREATE TABLE fields (
	collection TEXT NOT NULL,
	id         TEXT NOT NULL,
	field      TEXT NOT NULL,
	value      TEXT NOT NULL, -- JSON
	hlc        TEXT NOT NULL, -- wire stamp; string order is clock order
	PRIMARY KEY (collection, id, field)
) WITHOUT ROWID;

-- row_scopes says through which scopes a row is held: the scopes pulled
-- changes named, and the scopes derived locally for rows written here.
-- A row is deleted by an eviction only when it has no scope left.
CREATE TABLE row_scopes (
	scope      TEXT NOT NULL,
	collection TEXT NOT NULL,
	id         TEXT NOT NULL,
	PRIMARY KEY (scope, collection, id)
) WITHOUT ROWID;
CREATE INDEX row_scopes_row ON row_scopes (collection, id);

-- held_scopes are the scopes the server has delivered rows through and not
-- evicted since: the set whose crdt.ScopesHash proves an eviction.
CREATE TABLE held_scopes (
	scope TEXT PRIMARY KEY
) WITHOUT ROWID;

-- outbox holds every local write not yet acknowledged by the server, in
-- write order. batch_id is set when the write is put in a batch; from then on
-- the row is never changed, so a re-sent batch is byte-for-byte the same.
CREATE TABLE outbox (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	collection TEXT NOT NULL,
	id         TEXT NOT NULL,
	field      TEXT NOT NULL,
	value      TEXT NOT NULL,
	hlc        TEXT NOT NULL,
	base       TEXT NOT NULL DEFAULT '',
	batch_id   TEXT
);
CREATE INDEX outbox_batch ON outbox (batch_id, seq);
CREATE INDEX outbox_row ON outbox (collection, id);

-- batches are formed, persisted, then sent; a batch is deleted only when
-- the server answered it, so a lost answer or a crash re-sends the same id.
CREATE TABLE batches (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	batch_id   TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0
);

-- problems keeps rejected and quarantined writes for the UI until dismissed.
CREATE TABLE problems (
	pid        INTEGER PRIMARY KEY AUTOINCREMENT,
	kind       TEXT NOT NULL, -- rejected | quarantined
	batch_id   TEXT NOT NULL,
	collection TEXT NOT NULL,
	id         TEXT NOT NULL,
	field      TEXT NOT NULL,
	value      TEXT NOT NULL,
	hlc        TEXT NOT NULL,
	code       TEXT NOT NULL,
	message    TEXT NOT NULL,
	at         TEXT NOT NULL
);

-- meta: device_id, user, tokens, cursor, clock, held hash to prove, refetch
-- scopes, last sync and last error.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
