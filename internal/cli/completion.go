package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"accounts/internal/config"
)

// fileFlags take a file path (or, for --database and --key-store, a
// postgres:// URL): completion offers files for them.
var fileFlags = []string{"database", "key-file", "key-store", "new-key-file", "tls-cert", "tls-key", "curl-config"}

// flagChoices are the values of flags that take one of a few words.
var flagChoices = map[string][]string{"scope": {"read", "read_write"}}

// completionFlag is a flag as completion sees it.
type completionFlag struct {
	name    string
	usage   string
	valued  bool // takes a value (not a boolean)
	files   bool
	choices []string
}

// completionNode is a command as completion sees it: where it is, what may
// follow it.
type completionNode struct {
	path     string // "/customer/create"; "" for the root
	depth    int    // words from the program name to the command, inclusive
	commands []*command
	flags    []completionFlag
	args     []string
}

// completionNodes walks the tree, binding each command's flags on a flag
// set of its own to learn them (bind registers flags and does nothing
// else).
func completionNodes(root *command, env IO) []completionNode {
	var out []completionNode
	var walk func(c *command, path string, depth int)
	walk = func(c *command, path string, depth int) {
		n := completionNode{path: path, depth: depth, commands: c.children, args: c.args}
		if !c.isGroup() {
			fs := newFlagSet(c)
			c.bind(fs, env)
			fs.VisitAll(func(f *flag.Flag) {
				name, usage := flag.UnquoteUsage(f)
				n.flags = append(n.flags, completionFlag{
					name: f.Name, usage: usage, valued: name != "",
					files: slices.Contains(fileFlags, f.Name), choices: flagChoices[f.Name],
				})
			})
		}
		if c.name == "help" && c.parent == root {
			n.commands = root.children
		}
		out = append(out, n)
		for _, ch := range c.children {
			walk(ch, path+"/"+ch.name, depth+1)
		}
	}
	walk(root, "", 1)
	return out
}

// completion prints a completion script for bash or zsh, made from the
// command tree, so it knows every command and flag there is.
func completion(root *command, io IO) runFunc {
	return func(ctx context.Context, args []string) error {
		// Environment defaults play no part in a script: bind with none.
		nodes := completionNodes(root, IO{Env: config.MapEnv(nil)})
		switch args[0] {
		case "bash":
			return writeBash(io.Stdout, root.name, nodes)
		default:
			return writeZsh(io.Stdout, root.name, nodes)
		}
	}
}

// shellWords joins words for a shell double-quoted string; the names here
// are plain ([a-z_-]), so nothing needs quoting.
func shellWords(ws []string) string { return strings.Join(ws, " ") }

func writeBash(w io.Writer, prog string, nodes []completionNode) error {
	var b strings.Builder
	fn := "_" + strings.ReplaceAll(prog, "-", "_")
	fmt.Fprintf(&b, `# bash completion for %[1]s, made by "%[1]s completion bash".
# Load it in ~/.bashrc with: source <(%[1]s completion bash)
%[2]s() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local path="" i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case "$path/${COMP_WORDS[i]}" in
`, prog, fn)
	var paths []string
	for _, n := range nodes {
		if n.path != "" {
			paths = append(paths, n.path)
		}
	}
	fmt.Fprintf(&b, "\t\t%s) path=\"$path/${COMP_WORDS[i]}\" ;;\n\t\tesac\n\tdone\n", strings.Join(paths, "|"))
	b.WriteString("\tlocal words=\"\" valued=\"\"\n\tcase \"$path\" in\n")
	for _, n := range nodes {
		var words, valued []string
		for _, c := range n.commands {
			words = append(words, c.name)
		}
		words = append(words, n.args...)
		for _, f := range n.flags {
			words = append(words, "--"+f.name)
			if f.valued {
				valued = append(valued, "--"+f.name)
			}
		}
		words = append(words, "--help")
		fmt.Fprintf(&b, "\t%q) words=%q; valued=%q ;;\n", n.path, shellWords(words), " "+shellWords(valued)+" ")
	}
	b.WriteString("\tesac\n")
	// The value of a flag: files, one of its words, or nothing to offer.
	b.WriteString("\tlocal flag=\"--${prev#\"${prev%%[!-]*}\"}\"\n")
	b.WriteString("\tif [[ $prev == -* && $valued == *\" $flag \"* ]]; then\n\t\tcase \"$flag\" in\n")
	var files []string
	for _, f := range fileFlags {
		files = append(files, "--"+f)
	}
	fmt.Fprintf(&b, "\t\t%s) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n", strings.Join(files, "|"))
	for _, name := range sortedKeys(flagChoices) {
		fmt.Fprintf(&b, "\t\t--%s) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", name, shellWords(flagChoices[name]))
	}
	b.WriteString("\t\t*) COMPREPLY=() ;;\n\t\tesac\n\t\treturn\n\tfi\n")
	b.WriteString("\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\n")
	fmt.Fprintf(&b, "complete -F %s %s\n", fn, prog)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeZsh(w io.Writer, prog string, nodes []completionNode) error {
	var b strings.Builder
	fn := "_" + strings.ReplaceAll(prog, "-", "_")
	fmt.Fprintf(&b, `#compdef %[1]s
# zsh completion for %[1]s, made by "%[1]s completion zsh". Save it as
# %[2]s in a folder of $fpath, or load it in ~/.zshrc (after compinit) with:
# source <(%[1]s completion zsh)
%[2]s() {
	local p="" i
	for ((i = 2; i < CURRENT; i++)); do
		case "$p/${words[i]}" in
`, prog, fn)
	var paths []string
	for _, n := range nodes {
		if n.path != "" {
			paths = append(paths, n.path)
		}
	}
	fmt.Fprintf(&b, "\t\t(%s) p=\"$p/${words[i]}\" ;;\n\t\tesac\n\tdone\n", strings.Join(paths, "|"))
	b.WriteString("\tlocal -a cmds specs\n\tlocal depth=1\n\tcase \"$p\" in\n")
	for _, n := range nodes {
		fmt.Fprintf(&b, "\t(%s)\n\t\tdepth=%d\n", zshQuote(n.path), n.depth)
		if len(n.commands) > 0 {
			b.WriteString("\t\tcmds=(")
			for _, c := range n.commands {
				b.WriteString(" " + zshQuote(c.name+":"+c.summary))
			}
			b.WriteString(" )\n")
		}
		b.WriteString("\t\tspecs=(")
		for _, f := range n.flags {
			spec := "--" + f.name + "[" + zshEscape(f.usage) + "]"
			switch {
			case f.files:
				spec += ":" + f.name + ":_files"
			case len(f.choices) > 0:
				spec += ":" + f.name + ":(" + strings.Join(f.choices, " ") + ")"
			case f.valued:
				spec += ":" + f.name + ": "
			}
			b.WriteString(" " + zshQuote(spec))
		}
		if len(n.args) > 0 {
			b.WriteString(" " + zshQuote(":shell:("+strings.Join(n.args, " ")+")"))
		}
		b.WriteString(" '(- *)'{-h,--help}'[show help]' )\n\t\t;;\n")
	}
	b.WriteString("\tesac\n")
	b.WriteString(`	if (( ${#cmds} )); then
		_describe -t commands command cmds
		return
	fi
	# The words from the command on, as _arguments expects them.
	words=("${(@)words[depth,-1]}")
	(( CURRENT -= depth - 1 ))
	_arguments -s $specs
}
`)
	fmt.Fprintf(&b, "if [[ ${funcstack[1]} == %[1]s ]]; then\n\t%[1]s \"$@\"\nelse\n\tcompdef %[1]s %[2]s\nfi\n", fn, prog)
	_, err := io.WriteString(w, b.String())
	return err
}

// zshQuote single-quotes s for zsh.
func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// zshEscape escapes what _arguments reads in a description: brackets and
// colons.
func zshEscape(s string) string {
	return strings.NewReplacer(`[`, `\[`, `]`, `\]`, `:`, `\:`).Replace(s)
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
