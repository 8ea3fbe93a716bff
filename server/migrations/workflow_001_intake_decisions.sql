-- intake_decisions keeps the team's weekly intake decisions of a region, in
-- the region's database: the referral's status and a start's trajectory are
-- written through the merge path in the same transaction
-- (store.Region.ServerWriteWith), so a decision and its effect commit
-- together. Append-only: a referral is decided once.
CREATE TABLE intake_decisions (
	id              INTEGER PRIMARY KEY,
	referral_id     TEXT NOT NULL UNIQUE,
	family_id       TEXT NOT NULL DEFAULT '',
	week            TEXT NOT NULL,                 -- ISO week of the meeting, 2026-W48
	kind            TEXT NOT NULL CHECK (kind IN ('start', 'decline', 'redirect', 'consult')),
	coach_id        TEXT NOT NULL DEFAULT '',      -- start: the lead coach
	co_coach_ids    TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(co_coach_ids)),
	trajectory_id   TEXT NOT NULL DEFAULT '',      -- start: the trajectory created
	mandated        INTEGER NOT NULL DEFAULT 0,
	reason          TEXT NOT NULL DEFAULT '',      -- decline: required
	redirect_to     TEXT NOT NULL DEFAULT '',      -- redirect: to whom
	override_reason TEXT NOT NULL DEFAULT '',      -- start over a capacity refusal: required
	capacity        TEXT NOT NULL DEFAULT 'null' CHECK (json_valid(capacity)),     -- start: the explained capacity decision
	eligibility     TEXT NOT NULL DEFAULT 'null' CHECK (json_valid(eligibility)),  -- the explained intake decision
	rules_version   TEXT NOT NULL DEFAULT '',
	received_on     TEXT NOT NULL DEFAULT '',      -- the referral's, for days to decision
	decided_on      TEXT NOT NULL,                 -- YYYY-MM-DD, Europe/Brussels
	decided_at      TEXT NOT NULL,                 -- RFC 3339, UTC
	decided_by      TEXT NOT NULL,                 -- user id
	seq             INTEGER NOT NULL               -- change_log seq of the write
);

CREATE INDEX intake_decisions_week ON intake_decisions (week, id);
CREATE INDEX intake_decisions_day ON intake_decisions (decided_on, id);

CREATE TRIGGER intake_decisions_no_update BEFORE UPDATE ON intake_decisions
BEGIN
	SELECT RAISE(ABORT, 'intake_decisions is append-only');
END;

CREATE TRIGGER intake_decisions_no_delete BEFORE DELETE ON intake_decisions
BEGIN
	SELECT RAISE(ABORT, 'intake_decisions is append-only');
END;
