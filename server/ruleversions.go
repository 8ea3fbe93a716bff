package server

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/sync/store"
)

// Only the rules_* files: other components of package server may add
// migrations of their own to the folder.
//
//go:embed migrations/rules_*.sql
var ruleMigrations embed.FS

// RuleVersions is the rules.VersionStore of the server: every activated
// version of a region's rule files, kept in the table rule_versions of the
// main database. A trigger refuses every UPDATE and DELETE, so the history
// is append-only.
type RuleVersions struct {
	db *store.DB
}

var _ rules.VersionStore = (*RuleVersions)(nil)

// OpenRuleVersions migrates the rule_versions table of db (the main
// database) and returns the store.
func OpenRuleVersions(ctx context.Context, db *store.DB) (*RuleVersions, error) {
	sub, err := fs.Sub(ruleMigrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("rule versions migrations: %w", err)
	}
	if err := db.Migrate(ctx, "rules", sub); err != nil {
		return nil, fmt.Errorf("rule versions: %w", err)
	}
	return &RuleVersions{db: db}, nil
}

// ruleTimeFormat keeps the full precision of an activation time, in UTC.
const ruleTimeFormat = time.RFC3339Nano

// Record appends the activation v.
func (rv *RuleVersions) Record(ctx context.Context, v rules.Version) error {
	files := v.Files
	if files == nil {
		files = []rules.File{}
	}
	b, err := json.Marshal(files)
	if err != nil {
		return fmt.Errorf("record rules version %s of %s: %w", v.Hash, v.Region, err)
	}
	if _, err := rv.db.Writer.ExecContext(ctx,
		`INSERT INTO rule_versions (region, hash, files, activated_at, activated_by, source) VALUES (?, ?, ?, ?, ?, ?)`,
		v.Region, v.Hash, string(b), v.ActivatedAt.UTC().Format(ruleTimeFormat), v.ActivatedBy, v.Source); err != nil {
		return fmt.Errorf("record rules version %s of %s: %w", v.Hash, v.Region, err)
	}
	return nil
}

// List returns the activations of region, newest first.
func (rv *RuleVersions) List(ctx context.Context, region string) ([]rules.Version, error) {
	rows, err := rv.db.Reader.QueryContext(ctx,
		`SELECT region, hash, files, activated_at, activated_by, source FROM rule_versions WHERE region = ? ORDER BY id DESC`, region)
	if err != nil {
		return nil, fmt.Errorf("list rules versions of %s: %w", region, err)
	}
	defer rows.Close()
	out := []rules.Version{}
	for rows.Next() {
		v, err := scanRuleVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("list rules versions of %s: %w", region, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list rules versions of %s: %w", region, err)
	}
	return out, nil
}

// Get returns the latest activation of region with hash, or a
// *samenplan.Error with code not_found.
func (rv *RuleVersions) Get(ctx context.Context, region, hash string) (rules.Version, error) {
	row := rv.db.Reader.QueryRowContext(ctx,
		`SELECT region, hash, files, activated_at, activated_by, source FROM rule_versions
		 WHERE region = ? AND hash = ? ORDER BY id DESC LIMIT 1`, region, hash)
	v, err := scanRuleVersion(row)
	if errors.Is(err, sql.ErrNoRows) {
		return rules.Version{}, samenplan.Errorf(samenplan.ENOTFOUND,
			"Regio %s heeft geen regelversie %s / region %s has no rules version %s", region, hash, region, hash)
	} else if err != nil {
		return rules.Version{}, fmt.Errorf("get rules version %s of %s: %w", hash, region, err)
	}
	return v, nil
}

func scanRuleVersion(s interface{ Scan(...any) error }) (rules.Version, error) {
	var v rules.Version
	var files, at string
	if err := s.Scan(&v.Region, &v.Hash, &files, &at, &v.ActivatedBy, &v.Source); err != nil {
		return rules.Version{}, err
	}
	if err := json.Unmarshal([]byte(files), &v.Files); err != nil {
		return rules.Version{}, fmt.Errorf("files of version %s: %w", v.Hash, err)
	}
	t, err := time.Parse(ruleTimeFormat, at)
	if err != nil {
		return rules.Version{}, fmt.Errorf("activated_at of version %s: %w", v.Hash, err)
	}
	v.ActivatedAt = t
	return v, nil
}
