package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/samenplan/samenplan/server/auth"
	"github.com/samenplan/samenplan/sync/store"
)

// openAccounts opens the main database of a data directory for the
// account commands. The running server notices their changes within its
// reload interval (10 s).
func openAccounts(ctx context.Context, data string) (*auth.Service, func(), error) {
	db, err := store.OpenDB(filepath.Join(data, "main.db"))
	if err != nil {
		return nil, nil, err
	}
	svc, err := auth.Open(ctx, db, auth.Config{ReloadEvery: -1})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return svc, func() { svc.Close(); db.Close() }, nil
}

func readPassword(stdin io.Reader) (string, error) {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func runUser(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: user add|list|passwd", errUsage)
	}
	fs := flag.NewFlagSet("user "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	data := fs.String("data", envOr("SAMENPLAN_DATA", "data"), "data directory")
	var nu auth.NewUser
	var regions string
	switch args[0] {
	case "add":
		fs.StringVar(&nu.Username, "username", "", "login name")
		fs.StringVar(&nu.DisplayName, "name", "", "display name")
		fs.StringVar(&nu.Role, "role", "coach", "coach, coordinator, reviewer or admin")
		fs.StringVar(&regions, "regions", "", "comma-separated regions")
		fs.StringVar(&nu.Organisation, "org", "", "organisation")
		fs.Float64Var(&nu.FTE, "fte", 1, "full-time equivalent (coaches)")
		fs.BoolVar(&nu.Volunteer, "volunteer", false, "volunteer coach")
	case "list":
		fs.StringVar(&regions, "region", "", "only this region")
	case "passwd":
		fs.StringVar(&nu.Username, "username", "", "login name")
	default:
		return fmt.Errorf("%w: user add|list|passwd", errUsage)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: user %s: %v", errUsage, args[0], err)
	}
	svc, done, err := openAccounts(ctx, *data)
	if err != nil {
		return err
	}
	defer done()
	by := auth.System("cli")
	switch args[0] {
	case "add":
		if regions != "" {
			nu.Regions = strings.Split(regions, ",")
		}
		if nu.Password, err = readPassword(stdin); err != nil {
			return err
		}
		u, err := svc.CreateUser(ctx, nu, by)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created %s (%s, %s)\n", u.Username, u.Role, u.ID)
	case "list":
		users, err := svc.ListUsers(ctx, auth.UserFilter{Region: regions})
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tNAME\tROLE\tREGIONS\tFTE\tDISABLED\tID")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%v\t%s\n", u.Username, u.DisplayName, u.Role, strings.Join(u.Regions, ","), u.FTE, u.Disabled, u.ID)
		}
		return tw.Flush()
	case "passwd":
		u, err := svc.GetUserByUsername(ctx, nu.Username)
		if err != nil {
			return err
		}
		pw, err := readPassword(stdin)
		if err != nil {
			return err
		}
		if err := svc.SetPassword(ctx, u.ID, pw, by); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password changed for %s\n", u.Username)
	}
	return nil
}

func runDevice(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "revoke") {
		return fmt.Errorf("%w: device list|revoke", errUsage)
	}
	fs := flag.NewFlagSet("device "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	data := fs.String("data", envOr("SAMENPLAN_DATA", "data"), "data directory")
	username := fs.String("username", "", "only this user's devices (list)")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: device %s: %v", errUsage, args[0], err)
	}
	svc, done, err := openAccounts(ctx, *data)
	if err != nil {
		return err
	}
	defer done()
	if args[0] == "revoke" {
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: device revoke [--data D] DEVICE_ID", errUsage)
		}
		if err := svc.RevokeDevice(ctx, fs.Arg(0), auth.System("cli")); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s\n", fs.Arg(0))
		return nil
	}
	userID := ""
	if *username != "" {
		u, err := svc.GetUserByUsername(ctx, *username)
		if err != nil {
			return err
		}
		userID = u.ID
	}
	devices, err := svc.ListDevices(ctx, userID)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tNAME\tLAST SEEN\tREVOKED")
	for _, d := range devices {
		revoked := ""
		if d.RevokedAt != nil {
			revoked = d.RevokedAt.Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, d.Username, d.Name, d.LastSeen.Format("2006-01-02 15:04"), revoked)
	}
	return tw.Flush()
}
