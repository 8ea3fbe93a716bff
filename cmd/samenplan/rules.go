package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/rules/rulescli"
	"github.com/samenplan/samenplan/server/view"
	"github.com/samenplan/samenplan/sync/store"
)

// runRules runs `samenplan rules ...`; `dryrun --data DIR` with a data
// directory decides the live open referrals of that installation.
func runRules(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return rulescli.RunWith(ctx, args, stdin, stdout, stderr, openLiveReferrals)
}

func openLiveReferrals(ctx context.Context, dir string) (rules.ReferralSource, func(), error) {
	files, _ := filepath.Glob(filepath.Join(dir, "regions", "*.db"))
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".db"))
	}
	stores, err := store.Open(ctx, dir, names, store.Options{})
	if err != nil {
		return nil, nil, err
	}
	return view.LiveReferrals{Stores: stores, Today: rules.DateOf(time.Now())}, func() { stores.Close() }, nil
}
