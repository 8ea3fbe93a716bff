// Package rulescli is `samenplan rules`: check, test, eval and dryrun over a
// directory of region rule files. cmd/samenplan calls Run; tests call it
// in-process.
package rulescli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/rules"
)

const usage = `usage: samenplan rules <command> [flags]

commands:
  check  --dir D                          compile and lint every region (exit 1 on any error)
  test   --dir D [--region R] [-v]        run the tests in the rule files; ends with "N passed, M failed"
  eval   --dir D --region R --ruleset S --input F.json [--today YYYY-MM-DD]
                                          print the explained decision as JSON (--input - reads stdin)
  dryrun --dir D --against NEWDIR --data F.json [--region R] [--today YYYY-MM-DD] [--json]
                                          which intake decisions would change with the rules in NEWDIR
`

// Run runs one rules command with args (without the leading "rules") and
// returns the exit code: 0 success, 1 errors or failures, 2 bad usage.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return RunWith(ctx, args, stdin, stdout, stderr, nil)
}

// DataOpener turns a dryrun --data path that is a directory (a live data
// directory) into the source of its referrals. The caller owns what it
// opens and closes it with the returned function.
type DataOpener func(ctx context.Context, dir string) (rules.ReferralSource, func(), error)

// RunWith is Run with a DataOpener for dryrun against live data: a --data
// path that is a directory is read through open; a file is read as JSON.
func RunWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, open DataOpener) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, open: open}
	switch args[0] {
	case "check":
		return c.check(args[1:])
	case "test":
		return c.test(args[1:])
	case "eval":
		return c.eval(args[1:])
	case "dryrun":
		return c.dryrun(ctx, args[1:])
	}
	fmt.Fprintf(stderr, "unknown command %q\n%s", args[0], usage)
	return 2
}

type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	open           DataOpener
}

func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("rules "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}

// parse parses args and checks that every name in required was given.
func (c *cli) parse(fs *flag.FlagSet, args []string, required ...string) bool {
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return false
	}
	for _, name := range required {
		if fs.Lookup(name).Value.String() == "" {
			fmt.Fprintf(c.stderr, "%s: --%s is required\n", fs.Name(), name)
			return false
		}
	}
	return true
}

func (c *cli) check(args []string) int {
	fs := c.flags("check")
	dir := fs.String("dir", "", "rules directory (one folder per region)")
	if !c.parse(fs, args, "dir") {
		return 2
	}
	set, diags, err := rules.Load(*dir)
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return 1
	}
	for _, d := range diags {
		fmt.Fprintln(c.stdout, d.String())
	}
	errs, warns := rules.Split(diags)
	fmt.Fprintf(c.stderr, "%d regions loaded, %d errors, %d warnings\n", len(set.Regions), len(errs), len(warns))
	if len(errs) > 0 {
		return 1
	}
	return 0
}

func (c *cli) test(args []string) int {
	fs := c.flags("test")
	dir := fs.String("dir", "", "rules directory")
	region := fs.String("region", "", "only this region")
	verbose := fs.Bool("v", false, "also list the tests that pass")
	if !c.parse(fs, args, "dir") {
		return 2
	}
	names, err := rules.RegionNames(*dir)
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return 1
	}
	if *region != "" {
		if !contains(names, *region) {
			fmt.Fprintf(c.stderr, "no region %q in %s\n", *region, *dir)
			return 1
		}
		names = []string{*region}
	}
	passed, failed, broken := 0, 0, false
	for _, name := range names {
		reg, diags := rules.LoadRegion(*dir, name)
		for _, d := range diags {
			if d.Severity == rules.SeverityError {
				fmt.Fprintln(c.stdout, d.String())
			}
		}
		if reg == nil {
			broken = true
			fmt.Fprintf(c.stdout, "%s: not tested: the rule files have errors\n", name)
			continue
		}
		for _, t := range reg.RunTests() {
			if t.Passed {
				passed++
				if *verbose {
					fmt.Fprintf(c.stdout, "ok   %s/%s: %s\n", t.Region, t.Ruleset, t.Name)
				}
				continue
			}
			failed++
			fmt.Fprintln(c.stdout, t.Diagnostic().String())
		}
	}
	fmt.Fprintf(c.stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 || broken {
		return 1
	}
	return 0
}

func parseToday(s string) (rules.Date, error) {
	if s == "" {
		return rules.DateOf(time.Now()), nil
	}
	return rules.ParseDate(s)
}

func (c *cli) eval(args []string) int {
	fs := c.flags("eval")
	dir := fs.String("dir", "", "rules directory")
	region := fs.String("region", "", "region")
	ruleset := fs.String("ruleset", "", "intake, capacity or signals")
	input := fs.String("input", "", "input JSON file, - for stdin")
	todayFlag := fs.String("today", "", "today, when the input has none (default: the system date)")
	if !c.parse(fs, args, "dir", "region", "ruleset", "input") {
		return 2
	}
	today, err := parseToday(*todayFlag)
	if err != nil {
		fmt.Fprintf(c.stderr, "--today: %v\n", err)
		return 2
	}
	reg, diags := rules.LoadRegion(*dir, *region)
	if reg == nil {
		for _, d := range diags {
			fmt.Fprintln(c.stderr, d.String())
		}
		return 1
	}
	var b []byte
	if *input == "-" {
		b, err = io.ReadAll(io.LimitReader(c.stdin, rules.MaxFileSize+1))
	} else {
		b, err = os.ReadFile(*input)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "read input: %v\n", err)
		return 1
	}
	d, err := reg.EvalJSON(*ruleset, b, today)
	if err != nil {
		fmt.Fprintln(c.stderr, message(err))
		return 1
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		fmt.Fprintln(c.stderr, err)
		return 1
	}
	return 0
}

// message returns the caller-facing message of err.
func message(err error) string {
	var se *samenplan.Error
	if errors.As(err, &se) {
		return se.Message
	}
	return err.Error()
}

func (c *cli) dryrun(ctx context.Context, args []string) int {
	fs := c.flags("dryrun")
	dir := fs.String("dir", "", "rules directory in use")
	against := fs.String("against", "", "rules directory with the changed rules")
	data := fs.String("data", "", "JSON array of intake inputs with ids, or a live data directory")
	region := fs.String("region", "", "only this region")
	todayFlag := fs.String("today", "", "today, for inputs that have none (default: the system date)")
	asJSON := fs.Bool("json", false, "print the reports as JSON")
	if !c.parse(fs, args, "dir", "against", "data") {
		return 2
	}
	today, err := parseToday(*todayFlag)
	if err != nil {
		fmt.Fprintf(c.stderr, "--today: %v\n", err)
		return 2
	}
	var src rules.ReferralSource
	if st, err := os.Stat(*data); err == nil && st.IsDir() {
		if c.open == nil {
			fmt.Fprintf(c.stderr, "read data: %s is a directory; live data needs the samenplan binary\n", *data)
			return 1
		}
		live, done, err := c.open(ctx, *data)
		if err != nil {
			fmt.Fprintf(c.stderr, "read data: %v\n", err)
			return 1
		}
		defer done()
		src = live
	} else {
		f, err := os.Open(*data)
		if err != nil {
			fmt.Fprintf(c.stderr, "read data: %v\n", err)
			return 1
		}
		js, err := rules.ReadJSONReferrals(f)
		f.Close()
		if err != nil {
			fmt.Fprintln(c.stderr, err)
			return 1
		}
		src = js
	}
	before, bd, err := rules.Load(*dir)
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return 1
	}
	after, ad, err := rules.Load(*against)
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return 1
	}
	code := 0
	for _, d := range append(bd, ad...) {
		if d.Severity == rules.SeverityError {
			fmt.Fprintln(c.stderr, d.String())
			code = 1
		}
	}
	names := before.Names()
	if *region != "" {
		names = []string{*region}
	}
	var reports []rules.DryRunReport
	total, changed := 0, 0
	for _, name := range names {
		b, ok1 := before.Regions[name]
		a, ok2 := after.Regions[name]
		if !ok1 || !ok2 {
			fmt.Fprintf(c.stderr, "%s: not compared: missing or broken in %s\n", name, map[bool]string{true: *against, false: *dir}[ok1])
			code = 1
			continue
		}
		rep, err := rules.DryRun(ctx, b, a, src, today)
		if err != nil {
			fmt.Fprintln(c.stderr, err)
			return 1
		}
		reports = append(reports, rep)
		total += rep.Total
		changed += len(rep.Changed)
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if reports == nil {
			reports = []rules.DryRunReport{}
		}
		if err := enc.Encode(reports); err != nil {
			fmt.Fprintln(c.stderr, err)
			return 1
		}
		return code
	}
	for _, rep := range reports {
		for _, ch := range rep.Changed {
			fmt.Fprintf(c.stdout, "%s %s: eligible %v -> %v; reasons [%s] -> [%s]; priority %v -> %v\n", rep.Region, ch.ID,
				ch.Before.Eligible, ch.After.Eligible, strings.Join(ch.Before.Reasons, ", "), strings.Join(ch.After.Reasons, ", "),
				ch.Before.Priority, ch.After.Priority)
		}
	}
	fmt.Fprintf(c.stdout, "%d of %d decisions would change\n", changed, total)
	return code
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
