// Command samenplan is the Samenplan server and its operator tools:
// serve, rules, user, device, backup, simulate and version.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	_ "time/tzdata" // Europe/Brussels on machines without a zone database
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signalContext()
	code := Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks an error in the command line itself (exit code 2).
var errUsage = errors.New("usage")

const usage = `samenplan — case system for youth-care coaching (1 Gezin 1 Plan)

Usage:
  samenplan serve    [--addr :8080] [--data ./data] [--rules ./rules/regions] [--demo]
  samenplan rules    check|test|eval|dryrun ...
  samenplan user     add|list|passwd ...
  samenplan device   list|revoke ...
  samenplan backup   --data ./data --to DIR
  samenplan simulate [--devices 20] [--writes 2000] [--seed 1]
  samenplan bench    [--devices 500] [--duration 20s] [--quick]
  samenplan version

Flags can also be set in the environment: SAMENPLAN_ADDR, SAMENPLAN_DATA,
SAMENPLAN_RULES, SAMENPLAN_DEMO=1.
`

// Main runs the command named by args and returns the exit code. It is the
// whole program but for signal handling, so tests run it in-process.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stdout, stderr)
	case "rules":
		return runRules(ctx, args[1:], stdin, stdout, stderr)
	case "user":
		err = runUser(ctx, args[1:], stdin, stdout)
	case "device":
		err = runDevice(ctx, args[1:], stdout)
	case "backup":
		err = runBackup(ctx, args[1:], stdout)
	case "simulate":
		err = runSimulate(ctx, args[1:], stdout)
	case "bench":
		err = runBench(ctx, args[1:], stdout)
	case "version":
		fmt.Fprintln(stdout, "samenplan", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "samenplan: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "samenplan:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "samenplan:", err)
		return 1
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
