// Command accounts serves the Accounts API (Pigello-compatible protected
// identities) and manages its customers, clients and database.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"accounts/internal/cli"
)

func main() {
	// A hang-up stops a command as SIGTERM does (serve drains its requests):
	// its default action would kill it mid-request.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt, syscall.SIGHUP)
	defer stop()
	err := cli.Run(ctx, os.Args[1:], cli.IO{Env: os.LookupEnv, Environ: os.Environ, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	if err == nil {
		return
	}
	if cli.ErrChainBroken(err) {
		os.Exit(1) // the broken position is already printed
	}
	fmt.Fprintln(os.Stderr, "accounts:", err)
	var usage *cli.UsageError
	if errors.As(err, &usage) {
		os.Exit(2)
	}
	os.Exit(1)
}
