package main

import (
	"context"
	"io"
	"time"

	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/rules/rulescli"
	"github.com/samenplan/samenplan/server/view"
)

// runRules runs `samenplan rules ...`; `dryrun --data DIR` with a data
// directory decides the live open referrals of that installation.
func runRules(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return rulescli.RunWith(ctx, args, stdin, stdout, stderr, openLiveReferrals)
}

func openLiveReferrals(ctx context.Context, dir string) (rules.ReferralSource, func(), error) {
	stores, err := openExistingStores(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	return view.LiveReferrals{Stores: stores, Today: rules.DateOf(time.Now())}, func() { stores.Close() }, nil
}
