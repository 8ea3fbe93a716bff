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
	stores, err := openExistingStores(ctx, *data)
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

// openExistingStores opens the databases of an existing data directory (the
// main database and every regions/*.db), for the offline tools. It refuses a
// directory without a main.db instead of creating one.
func openExistingStores(ctx context.Context, data string) (*store.Stores, error) {
	if _, err := os.Stat(filepath.Join(data, "main.db")); err != nil {
		return nil, fmt.Errorf("no Samenplan data in %s: %w", data, err)
	}
	files, err := filepath.Glob(filepath.Join(data, "regions", "*.db"))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".db"))
	}
	return store.Open(ctx, data, names, store.Options{})
}
