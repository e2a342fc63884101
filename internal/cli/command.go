package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"accounts/internal/config"
)

// command is a node of the command tree: a group (children, no bind) or a
// command that runs (bind, no children). The tree is declared as data in
// commands(); everything a user sees of its shape — help, the listing of a
// bare group, the messages for an unknown name, completion — is derived
// from it here rather than written per command, so no command can lack it.
type command struct {
	name    string
	summary string // one line, lower case, no final period
	// synopsis follows the command's path in listings and its usage line:
	// its required flags and arguments, e.g. "--name NAME".
	synopsis string
	// bind registers the command's flags on fs and returns what runs it
	// once they are parsed. It must do nothing else: help and completion
	// call it to learn the flags.
	bind func(fs *flag.FlagSet, io IO) runFunc
	// args are the values of the one argument the command takes (a shell
	// name); maxArgs -1 takes any number of arguments. Otherwise an
	// argument is refused.
	args    []string
	maxArgs int

	children []*command
	parent   *command
}

// runFunc runs a command with its flags parsed; args are the arguments
// left after the flags.
type runFunc func(ctx context.Context, args []string) error

func (c *command) link(parent *command) {
	c.parent = parent
	for _, ch := range c.children {
		ch.link(c)
	}
}

func (c *command) isGroup() bool { return len(c.children) > 0 }

// path is the command as typed: "accounts customer create".
func (c *command) path() string {
	if c.parent == nil {
		return c.name
	}
	return c.parent.path() + " " + c.name
}

// prefix starts a usage message about c ("customer create: "); main
// prints "accounts: " before it already.
func (c *command) prefix() string {
	if c.parent == nil {
		return ""
	}
	return strings.TrimPrefix(c.path(), c.root().name+" ") + ": "
}

func (c *command) root() *command {
	for c.parent != nil {
		c = c.parent
	}
	return c
}

func (c *command) child(name string) *command {
	for _, ch := range c.children {
		if ch.name == name {
			return ch
		}
	}
	return nil
}

func (c *command) childNames() string {
	names := make([]string, len(c.children))
	for i, ch := range c.children {
		names[i] = ch.name
	}
	return strings.Join(names, ", ")
}

// isHelp reports whether a word asks a group for its help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// run finds the command args name and runs it.
func (c *command) run(ctx context.Context, args []string, io IO) error {
	for c.isGroup() {
		if len(args) == 0 {
			return usagef("%smissing command; one of: %s (run %q)", c.prefix(), c.childNames(), c.path()+" -h")
		}
		next := c.child(args[0])
		if next == nil && isHelp(args[0]) {
			return c.help(io.Stdout, nil)
		}
		if next == nil {
			if strings.HasPrefix(args[0], "-") {
				return usagef("%sflag %s before a command; one of: %s", c.prefix(), args[0], c.childNames())
			}
			return usagef("%sunknown command %q; one of: %s", c.prefix(), args[0], c.childNames())
		}
		c, args = next, args[1:]
	}
	fs := newFlagSet(c)
	run := c.bind(fs, io)
	repeated, err := parseOnce(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c.help(io.Stdout, fs)
		}
		if repeated != "" {
			return usagef("%sflag --%s is given twice: give it once", c.prefix(), repeated)
		}
		return usagef("%s%v", c.prefix(), err)
	}
	// The flag package stops at the first argument; -h after it still
	// asks for help.
	if slices.ContainsFunc(fs.Args(), func(a string) bool { return a != "help" && isHelp(a) }) {
		return c.help(io.Stdout, fs)
	}
	if err := c.checkArgs(fs.Args()); err != nil {
		return err
	}
	// After help, which a misspelled variable must not keep from a user.
	if io.Environ != nil {
		if err := config.CheckNames(io.Environ()); err != nil {
			return usagef("%v", err)
		}
	}
	return run(ctx, fs.Args())
}

// parseOnce parses args into fs, refusing a flag given twice, and then
// names it. Of two values, which one was meant is anyone's guess (a line
// pasted twice, a wrapper script adding its own), and the flag package
// would take the last without a word. An environment variable's value is
// a flag's default, not a first value: the flag overrides it.
func parseOnce(fs *flag.FlagSet, args []string) (repeated string, err error) {
	bound := map[*flag.Flag]flag.Value{}
	fs.VisitAll(func(f *flag.Flag) {
		bound[f] = f.Value
		f.Value = &onceValue{Value: f.Value, name: f.Name, repeated: &repeated}
	})
	// Help and completion read the flags' own values (their types name
	// the values in the usage lines).
	defer func() {
		for f, v := range bound {
			f.Value = v
		}
	}()
	err = fs.Parse(args)
	return repeated, err
}

// onceValue is a flag's value that takes one value only.
type onceValue struct {
	flag.Value
	name     string
	set      bool
	repeated *string
}

func (o *onceValue) Set(s string) error {
	if o.set {
		*o.repeated = o.name
		return errors.New("given twice")
	}
	o.set = true
	if o.IsBoolFlag() && s != "true" && s != "false" {
		// flag.Bool would take 1, t, T or TRUE too (and --yes=T
		// deletes a customer): a switch is given bare, or as exactly
		// true or false, as serve's are.
		return errors.New("must be true or false")
	}
	if s == "" && !o.IsBoolFlag() {
		// An empty value is no value: left as "not given" it would mean
		// a default (a generated key file, the default key store, TLS
		// off, no anchor), as a set but empty variable would; see
		// config.Value. It is most often a variable that was not set,
		// expanded into a command line.
		return errors.New("may not be empty: give it a value, or leave the flag out")
	}
	return o.Value.Set(s)
}

// IsBoolFlag keeps a boolean flag's value optional.
func (o *onceValue) IsBoolFlag() bool {
	b, ok := o.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// newFlagSet is a fresh flag set for c, whose errors come back as values
// and print nothing: run words them, in one line.
func newFlagSet(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.path(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func (c *command) checkArgs(args []string) error {
	switch {
	case c.maxArgs < 0:
		return nil
	case len(c.args) > 0 && len(args) == 0:
		return usagef("%smissing argument; one of: %s", c.prefix(), strings.Join(c.args, ", "))
	case len(c.args) > 0 && len(args) == 1 && !slices.Contains(c.args, args[0]):
		return usagef("%sunknown argument %q; one of: %s", c.prefix(), args[0], strings.Join(c.args, ", "))
	case len(c.args) > 0 && len(args) == 1:
		return nil
	case len(c.args) > 0:
		return usagef("%sunexpected argument %q", c.prefix(), args[1])
	case len(args) > 0:
		return usagef("%sunexpected argument %q (flags go before arguments)", c.prefix(), args[0])
	}
	return nil
}

// help writes c's help: its usage line and summary, then its flags or the
// commands under it. fs is the flag set c's bind filled (nil for a group).
func (c *command) help(w io.Writer, fs *flag.FlagSet) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 3, ' ', 0)
	if c.isGroup() {
		fmt.Fprintf(&b, "usage: %s <command>\n\n%s\n\ncommands:\n", c.path(), c.summary)
		for _, l := range c.leaves() {
			rel := strings.TrimPrefix(l.path(), c.path()+" ")
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(rel+" "+l.synopsis), l.summary)
		}
		tw.Flush()
		fmt.Fprintf(&b, "\nRun \"%s <command> -h\" for a command's flags.", c.path())
		if c.parent == nil {
			b.WriteString(" Every command that opens the database takes\n--database (env ACCOUNTS_DATABASE). Bad input exits 2 with one line on stderr.")
		}
		b.WriteString("\n")
	} else {
		usage := strings.TrimSpace(c.path() + " " + c.synopsis)
		if hasFlags(fs) {
			usage += " [flags]"
		}
		fmt.Fprintf(&b, "usage: %s\n\n%s\n", usage, c.summary)
		if hasFlags(fs) {
			b.WriteString("\nflags:\n")
			fs.VisitAll(func(f *flag.Flag) {
				name, text := flag.UnquoteUsage(f)
				left := "--" + f.Name
				if name != "" {
					left += " " + name
				}
				fmt.Fprintf(tw, "  %s\t%s%s\n", left, text, shownDefault(f))
			})
			tw.Flush()
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// shownDefault is how help shows a flag's default, which may come from the
// environment: a postgres:// URL's password is masked, since help output
// ends up in terminals, tickets and logs.
func shownDefault(f *flag.Flag) string {
	v := f.DefValue
	switch v {
	case "", "false", "0", "0s":
		return ""
	}
	if strings.Contains(v, "://") {
		if u, err := url.Parse(v); err == nil {
			v = u.Redacted()
		} else {
			v = "(set; not shown)"
		}
	}
	return " (default " + v + ")"
}

// leaves are the commands that run, under c, in declaration order.
func (c *command) leaves() []*command {
	if !c.isGroup() {
		return []*command{c}
	}
	var out []*command
	for _, ch := range c.children {
		out = append(out, ch.leaves()...)
	}
	return out
}

// helpCommand is "accounts help [COMMAND...]": the help of the command the
// words name, as "accounts COMMAND... -h" prints it.
func helpCommand(root *command, io IO) runFunc {
	return func(ctx context.Context, args []string) error {
		c := root
		for _, a := range args {
			next := c.child(a)
			if next == nil {
				return usagef("help: unknown command %q", strings.TrimSpace(strings.Join(args, " ")))
			}
			c = next
		}
		if c.isGroup() {
			return c.help(io.Stdout, nil)
		}
		fs := newFlagSet(c)
		c.bind(fs, io)
		return c.help(io.Stdout, fs)
	}
}

// plural is "1 entry", "2 entries": n and the noun in its number.
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
