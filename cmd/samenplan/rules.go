package main

import (
	"context"
	"io"

	"github.com/samenplan/samenplan/rules/rulescli"
)

func runRules(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return rulescli.Run(ctx, args, stdin, stdout, stderr)
}
