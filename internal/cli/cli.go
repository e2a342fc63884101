// Package cli is the accounts command: its subcommands, and the only place
// where the pieces of the service are wired together.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"accounts/internal/config"
)

// UsageError is bad input on the command line: the command exits 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// IO is where a command reads its environment and writes its output.
type IO struct {
	Env    config.Env
	Stdout io.Writer
	Stderr io.Writer
}

const usage = `usage: accounts <command> [flags]

commands:
  serve                              run the HTTP API
  migrate                            apply pending database migrations
  customer create --name NAME        register a customer
  customer delete --id ID            crypto-shred a customer: destroy its keys, then its data
  client create --customer ID        issue an API client (--scope read|read_write)
  client list --customer ID          list a customer's clients (never secrets)
  client revoke --id ID              revoke an API client
  keys rotate-master --new-key-file F rewrap every customer key under a new master key
  keys rotate-data [--customer ID]   a new data key version; every value re-sealed (resumable)
  audit verify [--customer ID]       check the audit chains; exit 1 at the first broken position
  audit list --customer ID           print a customer's audit entries (--object ID, --since TIME)

Every command takes --database (env ACCOUNTS_DATABASE); run "accounts <command> -h" for its flags.`

// Run runs the command named by args (without the program name). It
// returns a *UsageError for bad input.
func Run(ctx context.Context, args []string, io IO) error {
	if len(args) == 0 {
		return usagef("missing command; run accounts --help")
	}
	err := dispatch(ctx, args, io)
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

// errHelpShown ends a command whose -h was answered.
var errHelpShown = errors.New("help shown")

func dispatch(ctx context.Context, args []string, io IO) error {
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], io)
	case "migrate":
		return migrate(ctx, args[1:], io)
	case "customer":
		return sub(ctx, "customer", args[1:], io, map[string]command{"create": customerCreate, "delete": customerDelete})
	case "keys":
		return sub(ctx, "keys", args[1:], io, map[string]command{"rotate-master": keysRotateMaster, "rotate-data": keysRotateData, "verify": keysVerify})
	case "audit":
		return sub(ctx, "audit", args[1:], io, map[string]command{"verify": auditVerify, "list": auditList})
	case "client":
		return sub(ctx, "client", args[1:], io, map[string]command{
			"create": clientCreate, "list": clientList, "revoke": clientRevoke,
		})
	case "-h", "--help", "help":
		fmt.Fprintln(io.Stdout, usage)
		return nil
	}
	return usagef("unknown command %q; run accounts --help", args[0])
}

type command func(ctx context.Context, args []string, io IO) error

func sub(ctx context.Context, group string, args []string, io IO, cmds map[string]command) error {
	if len(args) == 0 {
		return usagef("accounts %s needs a subcommand", group)
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		return usagef("unknown command %q for accounts %s", args[0], group)
	}
	return cmd(ctx, args[1:], io)
}

// parse parses flags, turning every flag error into a UsageError of one line
// and refusing stray arguments; -h prints the flags to out.
func parse(fs *flag.FlagSet, args []string, out io.Writer) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(out, "usage: accounts %s [flags]\n", fs.Name())
			fs.SetOutput(out)
			fs.PrintDefaults()
			return errHelpShown
		}
		return usagef("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}
