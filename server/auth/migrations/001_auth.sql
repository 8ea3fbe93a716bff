-- Accounts, devices, refresh tokens and JWT signing keys, in the main database.
-- Times are UTC text in a fixed-width format so that text order is time order.
CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	username      TEXT NOT NULL UNIQUE CHECK (username = lower(username)),
	display_name  TEXT NOT NULL,
	role          TEXT NOT NULL CHECK (role IN ('coach', 'coordinator', 'reviewer', 'admin')),
	regions       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(regions)),
	organisation  TEXT NOT NULL DEFAULT '',
	fte           REAL NOT NULL DEFAULT 0,
	volunteer     INTEGER NOT NULL DEFAULT 0,
	password_hash TEXT NOT NULL,
	created_at    TEXT NOT NULL,
	disabled      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE devices (
	id         TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users (id),
	name       TEXT NOT NULL,
	created_at TEXT NOT NULL,
	last_seen  TEXT NOT NULL,
	revoked_at TEXT,
	revoked_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX devices_user ON devices (user_id);
CREATE INDEX devices_revoked ON devices (revoked_at) WHERE revoked_at IS NOT NULL;

-- Only the SHA-256 of a refresh token is stored.
CREATE TABLE refresh_tokens (
	hash       BLOB PRIMARY KEY,
	device_id  TEXT NOT NULL REFERENCES devices (id),
	user_id    TEXT NOT NULL REFERENCES users (id),
	created_at TEXT NOT NULL,
	expires_at TEXT NOT NULL,
	used_at    TEXT,
	revoked_at TEXT
);
CREATE INDEX refresh_tokens_device ON refresh_tokens (device_id);

CREATE TABLE signing_keys (
	kid        TEXT PRIMARY KEY,
	secret     BLOB NOT NULL,
	created_at TEXT NOT NULL,
	retired_at TEXT
);
