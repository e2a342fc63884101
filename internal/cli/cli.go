// Package cli is the accounts command: its subcommands, and the only place
// where the pieces of the service are wired together.
package cli

import (
	"context"
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

// IO is where a command reads its environment and input and writes its
// output.
type IO struct {
	Env config.Env
	// Environ lists the environment as NAME=value lines (os.Environ), so
	// that a misspelled variable is refused (config.CheckNames); nil
	// lists none.
	Environ func() []string
	// Stdin is read by the commands that ask for a confirmation (customer
	// delete). They ask only when it is a terminal (an *os.File, or any
	// reader with a Stat method, whose mode is a character device); nil is
	// no terminal.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// commands is the command tree: every command, its one-line summary, its
// flags (bound by bind) and what runs it. Help, the listing of a bare group,
// -h at every level and the completion scripts are all made from it, so a
// command added here has them all.
func commands() *command {
	root := &command{name: "accounts", summary: "serve the Accounts API and manage its customers, clients, keys and audit trail"}
	root.children = []*command{
		{name: "serve", summary: "run the HTTP API", bind: serve},
		{name: "migrate", summary: "apply pending database migrations", bind: migrate},
		{name: "customer", summary: "register and crypto-shred customers", children: []*command{
			{name: "create", synopsis: "--name NAME", summary: "register a customer", bind: customerCreate},
			{name: "delete", synopsis: "--id ID [--yes]", summary: "crypto-shred a customer: destroy its keys, then its data", bind: customerDelete},
		}},
		{name: "client", summary: "issue, list and revoke API clients", children: []*command{
			{name: "create", synopsis: "--customer ID", summary: "issue an API client (--scope read|read_write; --curl-config FILE)", bind: clientCreate},
			{name: "list", synopsis: "--customer ID", summary: "list a customer's clients (never secrets)", bind: clientList},
			{name: "revoke", synopsis: "--id ID", summary: "revoke an API client", bind: clientRevoke},
		}},
		{name: "keys", summary: "verify and rotate the master key and the customers' data keys", children: []*command{
			{name: "verify", synopsis: "[--customer ID]", summary: "check that every customer key opens with the master key in hand; exit 1 if one does not", bind: keysVerify},
			{name: "rotate-master", synopsis: "--new-key-file FILE", summary: "rewrap every customer key under a new master key", bind: keysRotateMaster},
			{name: "rotate-data", synopsis: "[--customer ID]", summary: "a new data key version; every value re-sealed (resumable)", bind: keysRotateData},
		}},
		{name: "audit", summary: "verify and list the audit trail", children: []*command{
			{name: "verify", synopsis: "[--customer ID]", summary: "check the audit chains; exit 1 at the first broken position", bind: auditVerify},
			{name: "list", synopsis: "--customer ID", summary: "print a customer's audit entries (--object ID, --since DATE)", bind: auditList},
		}},
		{name: "version", summary: "print the module version and build information", bind: version},
		{name: "openapi", summary: "print the OpenAPI document of the API (--yaml for YAML)", bind: openapiDocument},
		{name: "completion", synopsis: "bash|zsh", summary: "print a shell completion script", args: []string{"bash", "zsh"},
			bind: func(fs *flag.FlagSet, io IO) runFunc { return completion(root, io) }},
		{name: "help", synopsis: "[COMMAND...]", summary: "show a command's help (as -h does)", maxArgs: -1,
			bind: func(fs *flag.FlagSet, io IO) runFunc { return helpCommand(root, io) }},
	}
	root.link(nil)
	return root
}

// Run runs the command named by args (without the program name). It
// returns a *UsageError for bad input.
func Run(ctx context.Context, args []string, io IO) error {
	// Every command, not serve alone: keys rotate-data holds decrypted
	// values, keys verify and rotate-master unwrapped keys.
	if err := noCoreDumps(); err != nil {
		return fmt.Errorf("turning core dumps off: %w", err)
	}
	if err := setDumpable(false); err != nil {
		return fmt.Errorf("keeping debuggers out: %w", err)
	}
	return commands().run(ctx, args, io)
}
