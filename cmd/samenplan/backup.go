package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/samenplan/samenplan/sync/store"
)

// runBackup copies every database of a data directory (main.db and each
// regions/*.db) with VACUUM INTO, consistent while a server keeps writing,
// and checks each copy with PRAGMA integrity_check.
func runBackup(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	data := fs.String("data", envOr("SAMENPLAN_DATA", "data"), "data directory")
	to := fs.String("to", "", "directory to write the copies to (must not hold them yet)")
	if err := fs.Parse(args); err != nil || *to == "" {
		return fmt.Errorf("%w: backup --data DIR --to DIR", errUsage)
	}
	regions, _ := filepath.Glob(filepath.Join(*data, "regions", "*.db"))
	var names []string
	for _, r := range regions {
		names = append(names, strings.TrimSuffix(filepath.Base(r), ".db"))
	}
	if _, err := os.Stat(filepath.Join(*data, "main.db")); err != nil {
		return fmt.Errorf("no Samenplan data in %s: %w", *data, err)
	}
	stores, err := store.Open(ctx, *data, names, store.Options{})
	if err != nil {
		return err
	}
	defer stores.Close()
	files, err := stores.Backup(ctx, *to)
	if err != nil {
		return err
	}
	for _, f := range files {
		db, err := store.OpenDB(f)
		if err != nil {
			return err
		}
		res, err := db.IntegrityCheck(ctx)
		db.Close()
		if err != nil {
			return err
		}
		if res != "ok" {
			return fmt.Errorf("backup %s failed integrity_check: %s", f, res)
		}
		fmt.Fprintf(stdout, "%s ok\n", f)
	}
	return nil
}
