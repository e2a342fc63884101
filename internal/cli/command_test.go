package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"accounts/internal/audit"
	"accounts/internal/auth"
	"accounts/internal/config"
	"accounts/internal/keystore"
	"accounts/internal/schema"
	"accounts/internal/seal"

	"github.com/google/uuid"
)

// cliLeafPaths are the commands that run, as typed after "accounts".
func cliLeafPaths() []string {
	root := commands()
	var out []string
	for _, l := range root.leaves() {
		out = append(out, strings.TrimPrefix(l.path(), root.name+" "))
	}
	return out
}

// cliGroups are the groups of the tree, the root included, as typed after
// "accounts" ("" for the root), with their children's names.
func cliGroups() map[string][]string {
	root := commands()
	out := map[string][]string{}
	var walk func(c *command)
	walk = func(c *command) {
		if !c.isGroup() {
			return
		}
		var names []string
		for _, ch := range c.children {
			names = append(names, ch.name)
			walk(ch)
		}
		out[strings.TrimPrefix(strings.TrimPrefix(c.path(), root.name), " ")] = names
	}
	walk(root)
	return out
}

func cliWords(path string) []string { return strings.Fields(path) }

// cliFlagsOf binds a command's flags and returns their names.
func cliFlagsOf(t *testing.T, path string) []string {
	t.Helper()
	c := commands()
	for _, w := range cliWords(path) {
		if c = c.child(w); c == nil {
			t.Fatalf("no command %q", path)
		}
	}
	fs := newFlagSet(c)
	c.bind(fs, IO{Env: config.MapEnv(nil)})
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// cliBadInput is one refused command line and a fact its message must
// state (a flag's name, the value refused).
type cliBadInput struct {
	what string
	args []string
	fact string
}

// cliCommandSpec says how to make a command line of a command valid, so
// that each case can break exactly one thing in it.
type cliCommandSpec struct {
	valid    []string   // a valid command line after the command's words
	required []string   // flags it can't run without
	ids      []string   // flags that take a UUID
	unknown  string     // the flag naming a customer (or client) that must exist
	bad      [][]string // other malformed lines, each complete
}

// without returns args without the flag and its value.
func without(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--"+name {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// withFlag returns args with the flag set to v (added when absent).
func withFlag(args []string, name, v string) []string {
	return append(without(args, name), "--"+name, v)
}

// Every command and subcommand, given bad input, exits 2 (a *UsageError)
// with one line that names what was wrong, prints nothing on stdout and
// creates nothing; -h prints its help and exits 0. The binary answers
// alike, with exactly one line on stderr.
func TestCLIBadInputEveryCommand(t *testing.T) {
	bin := cliBuild(t)
	c := newCLIEnv(t)
	cu := c.customer("Bad Input AB")
	var cl cliClient
	c.runJSON(&cl, "client", "create", "--customer", cu.ID, "--json")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "new.key")
	garbage := filepath.Join(dir, "garbage.key")
	existing := filepath.Join(dir, "existing.curl")
	for path, content := range map[string]string{keyFile: seal.GenerateMasterKey(), garbage: "not a key", existing: "# taken\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	specs := map[string]cliCommandSpec{
		"serve":   {bad: [][]string{{"--allow-plaintext-http=yes"}, {"--allow-debugger=1"}, {"--addr", "nowhere"}}},
		"migrate": {bad: [][]string{{"--database", ""}}},
		"customer create": {valid: []string{"--name", "X"}, required: []string{"name"},
			bad: [][]string{{"--name", "   "}, {"--name", strings.Repeat("n", 256)}}},
		"customer delete": {valid: []string{"--id", cu.ID, "--yes"}, required: []string{"id"}, ids: []string{"id"}, unknown: "id"},
		"client create": {valid: []string{"--customer", cu.ID}, required: []string{"customer"}, ids: []string{"customer"}, unknown: "customer",
			bad: [][]string{
				{"--customer", cu.ID, "--scope", "admin"},
				{"--customer", cu.ID, "--curl-config", existing},
				{"--customer", cu.ID, "--curl-config", filepath.Join(dir, "no-such-folder", "c.curl")},
				{"--customer", cu.ID, "--curl-config", ""},
			}},
		"client list":        {valid: []string{"--customer", cu.ID}, required: []string{"customer"}, ids: []string{"customer"}, unknown: "customer"},
		"client revoke":      {valid: []string{"--id", cl.ID}, required: []string{"id"}, ids: []string{"id"}, unknown: "id"},
		"keys rotate-master": {valid: []string{"--new-key-file", keyFile}, required: []string{"new-key-file"}, bad: [][]string{{"--new-key-file", garbage}, {"--new-key-file", filepath.Join(dir, "absent.key")}}},
		"keys rotate-data":   {ids: []string{"customer"}, unknown: "customer"},
		"keys verify": {ids: []string{"customer"}, unknown: "customer",
			bad: [][]string{{"--key-store", c.vars[config.EnvDatabase]}, {"--key-store", "mysql://u@h/x"}}},
		"audit verify": {ids: []string{"customer"}, unknown: "customer"},
		"audit list": {valid: []string{"--customer", cu.ID}, required: []string{"customer"}, ids: []string{"customer", "object"}, unknown: "customer",
			bad: [][]string{{"--customer", cu.ID, "--since", "yesterday"}, {"--customer", cu.ID, "--since", "2026-01-02T03:04:05"}}},
		"version":    {},
		"openapi":    {},
		"completion": {valid: []string{"bash"}, bad: [][]string{{}, {"fish"}}},
		"help":       {bad: [][]string{{"frobnicate"}, {"customer", "frobnicate"}}},
	}
	var cases []cliBadInput
	for _, path := range cliLeafPaths() {
		spec, ok := specs[path]
		if !ok {
			t.Errorf("accounts %s: no bad-input cases: add it to this test", path)
			continue
		}
		words := cliWords(path)
		line := func(args ...string) []string { return append(slices.Clone(words), args...) }
		cases = append(cases,
			cliBadInput{path + ": unknown flag", line(append([]string{"--bogus"}, spec.valid...)...), "bogus"},
			cliBadInput{path + ": stray argument", line(append(slices.Clone(spec.valid), "extra")...), "extra"},
		)
		for _, f := range spec.required {
			cases = append(cases, cliBadInput{path + ": without --" + f, line(without(spec.valid, f)...), f})
		}
		for _, f := range spec.ids {
			cases = append(cases, cliBadInput{path + ": --" + f + " not a UUID", line(withFlag(spec.valid, f, "not-a-uuid")...), f},
				cliBadInput{path + ": --" + f + " empty", line(withFlag(spec.valid, f, "")...), f})
		}
		if spec.unknown != "" {
			id := uuid.NewString()
			cases = append(cases, cliBadInput{path + ": unknown --" + spec.unknown, line(withFlag(spec.valid, spec.unknown, id)...), id})
		}
		for i, b := range spec.bad {
			cases = append(cases, cliBadInput{path + ": bad input " + string(rune('a'+i)), line(b...), ""})
		}
		for _, f := range spec.required {
			if !slices.Contains(cliFlagsOf(t, path), f) {
				t.Errorf("accounts %s: the test names a flag --%s it does not have", path, f)
			}
		}
	}
	for group, children := range cliGroups() {
		words := cliWords(group)
		cases = append(cases,
			cliBadInput{"group " + group + ": bare", words, children[len(children)-1]},
			cliBadInput{"group " + group + ": unknown command", append(slices.Clone(words), "frobnicate"), "frobnicate"},
			cliBadInput{"group " + group + ": flag before a command", append(slices.Clone(words), "--bogus"), "bogus"},
		)
	}

	for _, tc := range cases {
		out, errOut, err := c.run(tc.args...)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("%s: error %v, want a usage error (exit 2)", tc.what, err)
			continue
		}
		msg := err.Error()
		if msg == "" || strings.ContainsAny(msg, "\r\n") {
			t.Errorf("%s: the message is not one line", tc.what)
		}
		if !strings.Contains(msg, tc.fact) {
			t.Errorf("%s: the message %q does not name %q", tc.what, msg, tc.fact)
		}
		if out != "" || errOut != "" {
			t.Errorf("%s: printed %d bytes on stdout and %d on stderr besides the error", tc.what, len(out), len(errOut))
		}

		cmd := exec.Command(bin, tc.args...)
		cmd.Env = cliCleanEnv(config.EnvDatabase+"="+c.vars[config.EnvDatabase], config.EnvMasterKey+"="+c.vars[config.EnvMasterKey])
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err = cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%s: the binary's exit: %v, want exit status 2", tc.what, err)
		}
		if s := stderr.String(); strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
			t.Errorf("%s: the binary's stderr is not one line (%d lines)", tc.what, strings.Count(s, "\n"))
		}
		if stdout.Len() != 0 {
			t.Errorf("%s: the binary printed on stdout", tc.what)
		}
	}

	// Nothing was made, revoked or deleted by any of them.
	var cls []cliClient
	out, _, err := c.run("client", "list", "--customer", cu.ID, "--json")
	if err != nil || json.Unmarshal([]byte(out), &cls) != nil || len(cls) != 1 || cls[0].RevokedAt != nil {
		t.Errorf("the refused commands changed the customer's clients (err %v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "no-such-folder")); err == nil {
		t.Errorf("a refused client create made a folder")
	}
	if b, _ := os.ReadFile(existing); string(b) != "# taken\n" {
		t.Errorf("a refused client create changed an existing file")
	}

	// -h and --help, anywhere on the line, print the help on stdout and
	// exit 0; a command's help names each of its flags.
	for _, path := range cliLeafPaths() {
		spec := specs[path]
		for _, h := range [][]string{{"-h"}, {"--help"}, append(slices.Clone(spec.valid), "-h")} {
			args := append(cliWords(path), h...)
			out, errOut, err := c.run(args...)
			if err != nil || errOut != "" || !strings.HasPrefix(out, "usage: accounts "+path) {
				t.Errorf("accounts %s: err %v, stderr %d bytes, stdout not its usage", strings.Join(args, " "), err, len(errOut))
				continue
			}
			for _, f := range cliFlagsOf(t, path) {
				if !strings.Contains(out, "--"+f) {
					t.Errorf("accounts %s: the help does not name --%s", strings.Join(args, " "), f)
				}
			}
		}
		out, _, err := c.run(append([]string{"help"}, cliWords(path)...)...)
		if err != nil || !strings.HasPrefix(out, "usage: accounts "+path) {
			t.Errorf("accounts help %s: err %v, or not its usage", path, err)
		}
	}
	for group, children := range cliGroups() {
		for _, h := range []string{"-h", "--help", "help"} {
			args := append(cliWords(group), h)
			out, errOut, err := c.run(args...)
			if err != nil || errOut != "" {
				t.Errorf("accounts %s: err %v, stderr %d bytes", strings.Join(args, " "), err, len(errOut))
			}
			for _, ch := range children {
				if !regexp.MustCompile(`(?m)^  (\S+ )*` + regexp.QuoteMeta(ch) + `\b`).MatchString(out) {
					t.Errorf("accounts %s: the listing lacks %s", strings.Join(args, " "), ch)
				}
			}
		}
	}
}

// cliTerminal is standard input that is a terminal, typing answer.
type cliTerminal struct{ *strings.Reader }

func (cliTerminal) Stat() (os.FileInfo, error) { return cliTTYInfo{}, nil }

type cliTTYInfo struct{}

func (cliTTYInfo) Name() string       { return "tty" }
func (cliTTYInfo) Size() int64        { return 0 }
func (cliTTYInfo) Mode() os.FileMode  { return os.ModeDevice | os.ModeCharDevice | 0o620 }
func (cliTTYInfo) ModTime() time.Time { return time.Time{} }
func (cliTTYInfo) IsDir() bool        { return false }
func (cliTTYInfo) Sys() any           { return nil }

// runWithStdin runs a command with stdin.
func (c *cliEnv) runWithStdin(stdin io.Reader, args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := Run(context.Background(), args, IO{Env: c.env, Stdin: stdin, Stdout: &out, Stderr: &errOut})
	return out.String(), errOut.String(), err
}

// customer delete asks on a terminal for the name or id, refuses anywhere
// else without --yes, and deletes nothing it was not told to.
func TestCLICustomerDeleteConfirmation(t *testing.T) {
	c := newCLIEnv(t)
	exists := func(id string) bool {
		_, _, err := c.run("client", "list", "--customer", id)
		return err == nil
	}
	a := c.customer("Confirm A AB")
	b := c.customer("Confirm B AB")
	other := c.customer("Confirm Other AB")
	refusals := []struct {
		what  string
		stdin io.Reader
	}{
		{"no stdin", nil},
		{"a pipe", strings.NewReader(a.ID + "\n")},
		{"a terminal, empty answer", cliTerminal{strings.NewReader("\n")}},
		{"a terminal, end of input", cliTerminal{strings.NewReader("")}},
		{"a terminal, another customer's name", cliTerminal{strings.NewReader(other.Name + "\n")}},
		{"a terminal, another customer's id", cliTerminal{strings.NewReader(other.ID + "\n")}},
		{"a terminal, yes", cliTerminal{strings.NewReader("yes\n")}},
	}
	for _, r := range refusals {
		out, _, err := c.runWithStdin(r.stdin, "customer", "delete", "--id", a.ID, "--json")
		cliUsage(t, r.what, err)
		if out != "" || !exists(a.ID) {
			t.Errorf("%s: the customer was deleted or something printed", r.what)
		}
	}
	// /dev/null is a character device, not a terminal: nobody is asked.
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	out, errOut, err := c.runWithStdin(devNull, "customer", "delete", "--id", a.ID, "--json")
	cliUsage(t, "/dev/null", err)
	if out != "" || errOut != "" || !exists(a.ID) {
		t.Errorf("/dev/null: a question was asked (%d bytes on stderr), or the customer was deleted", len(errOut))
	}
	// On a terminal the question goes to stderr; stdout keeps the JSON.
	out, errOut, err = c.runWithStdin(cliTerminal{strings.NewReader(" " + a.Name + " \n")}, "customer", "delete", "--id", a.ID, "--json")
	var deleted map[string]string
	if err != nil || json.Unmarshal([]byte(out), &deleted) != nil || deleted["id"] != a.ID {
		t.Errorf("typing the name: err %v, or no JSON of the deletion on stdout", err)
	}
	if !strings.Contains(errOut, a.ID) || exists(a.ID) {
		t.Errorf("typing the name: no question naming the customer on stderr, or the customer is still there")
	}
	if _, _, err := c.runWithStdin(cliTerminal{strings.NewReader(b.ID + "\n")}, "customer", "delete", "--id", b.ID); err != nil || exists(b.ID) {
		t.Errorf("typing the id: err %v, or the customer is still there", err)
	}
	// --yes needs no terminal, and asks nothing.
	out, errOut, err = c.runWithStdin(nil, "customer", "delete", "--id", other.ID, "--yes", "--json")
	if err != nil || errOut != "" || exists(other.ID) || !json.Valid([]byte(out)) {
		t.Errorf("--yes: err %v, stderr %d bytes, or the customer is still there", err, len(errOut))
	}
	// A deleted customer is unknown to customer delete, like any other.
	_, _, err = c.runWithStdin(nil, "customer", "delete", "--id", other.ID, "--yes")
	cliUsage(t, "deleting a deleted customer", err)
}

// cliJSONValues decodes output that is one JSON value or JSON Lines.
func cliJSONValues(out string) ([]any, bool) {
	var vs []any
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var v any
		if err := dec.Decode(&v); err == io.EOF {
			return vs, len(vs) > 0
		} else if err != nil {
			return nil, false
		}
		vs = append(vs, v)
	}
}

// Every command that takes --json prints JSON with it, and nothing else.
func TestCLIEveryJSONFlagPrintsJSON(t *testing.T) {
	c := newCLIEnv(t)
	a := c.customer("JSON A AB")
	b := c.customer("JSON B AB")
	var cl cliClient
	c.runJSON(&cl, "client", "create", "--customer", a.ID, "--json")
	newKey := seal.GenerateMasterKey()
	keyFile := filepath.Join(t.TempDir(), "new.key")
	if err := os.WriteFile(keyFile, []byte(newKey), 0o600); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		path string
		args []string
		then func()
	}{
		{path: "customer create", args: []string{"--name", "JSON C AB"}},
		{path: "client create", args: []string{"--customer", a.ID}},
		{path: "client list", args: []string{"--customer", a.ID}},
		{path: "client revoke", args: []string{"--id", cl.ID}},
		{path: "keys rotate-data"},
		{path: "keys rotate-master", args: []string{"--new-key-file", keyFile}, then: func() { c.vars[config.EnvMasterKey] = newKey }},
		{path: "keys rotate-data", args: []string{"--customer", a.ID}},
		{path: "keys verify"},
		{path: "keys verify", args: []string{"--customer", a.ID}},
		{path: "audit verify"},
		{path: "customer delete", args: []string{"--id", b.ID, "--yes"}},
		{path: "audit list", args: []string{"--customer", b.ID}},
		{path: "audit verify", args: []string{"--customer", b.ID}},
		{path: "version"},
	}
	covered := map[string]bool{}
	for _, s := range steps {
		args := append(append(cliWords(s.path), s.args...), "--json")
		out, _, err := c.run(args...)
		if err != nil {
			t.Errorf("accounts %s --json: %v", s.path, err)
			continue
		}
		vs, ok := cliJSONValues(out)
		if !ok {
			t.Errorf("accounts %s --json: the output is not JSON (nor JSON Lines)", s.path)
		}
		if s.path == "keys rotate-data" {
			for _, v := range vs {
				m, _ := v.(map[string]any)
				if m["customer_id"] == nil || m["version"] == nil || m["values"] == nil {
					t.Errorf("keys rotate-data --json: a line lacks customer_id, version or values")
				}
			}
			if len(s.args) == 0 && len(vs) != 3 {
				t.Errorf("keys rotate-data --json: %d lines, want one per customer (3)", len(vs))
			}
		}
		if s.then != nil {
			s.then()
		}
		covered[s.path] = true
	}
	for _, path := range cliLeafPaths() {
		if slices.Contains(cliFlagsOf(t, path), "json") && !covered[path] {
			t.Errorf("accounts %s takes --json: add it to this test", path)
		}
	}
}

// Counts are printed with their noun in the right number.
func TestCLIPlurals(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0 entries"}, {1, "1 entry"}, {2, "2 entries"}, {1000, "1000 entries"}} {
		if got := plural(tc.n, "entry", "entries"); got != tc.want {
			t.Errorf("plural(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	c := newCLIEnv(t)
	cu := c.customer("Plural AB")
	// A deleted customer's trail holds exactly one entry: the deletion.
	if _, _, err := c.run("customer", "delete", "--id", cu.ID, "--yes"); err != nil {
		t.Fatal(err)
	}
	var outs []string
	for _, args := range [][]string{
		{"audit", "verify"}, {"audit", "verify", "--customer", cu.ID}, {"audit", "list", "--customer", cu.ID},
		{"keys", "rotate-data"},
	} {
		out, _, err := c.run(args...)
		if err != nil {
			t.Fatalf("accounts %s: %v", strings.Join(args, " "), err)
		}
		outs = append(outs, out)
	}
	all := strings.Join(outs, "")
	if bad := regexp.MustCompile(`\b1 (entries|objects|keys|values|customers)\b|\(s\)`).FindString(all); bad != "" {
		t.Errorf("output has %q", bad)
	}
	if !strings.Contains(outs[1], "1 entry") {
		t.Errorf("audit verify of a one-entry trail does not count 1 entry")
	}
}

// The audit commands know a deleted customer by its trail, and refuse a
// customer that never was, as every command does.
func TestCLIAuditDeletedCustomerIsKnown(t *testing.T) {
	c := newCLIEnv(t)
	cu := c.customer("Deleted Audit AB")
	if _, _, err := c.run("customer", "delete", "--id", cu.ID, "--yes"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"audit", "verify", "--customer", cu.ID}, {"audit", "list", "--customer", cu.ID}} {
		if _, _, err := c.run(args...); err != nil {
			t.Errorf("accounts %s of a deleted customer: %v", strings.Join(args[:2], " "), err)
		}
	}
	for _, args := range [][]string{
		{"keys", "rotate-data", "--customer", cu.ID},
		{"client", "list", "--customer", cu.ID},
		{"client", "create", "--customer", cu.ID},
	} {
		_, _, err := c.run(args...)
		cliUsage(t, strings.Join(args[:2], " ")+" of a deleted customer", err)
	}
}

// cliCurlHeaders reads a curl config of header lines.
func cliCurlHeaders(t *testing.T, content string) map[string]string {
	t.Helper()
	h := map[string]string{}
	line := regexp.MustCompile(`^header = "([A-Za-z-]+): ([^"\\]*)"$`)
	sc := bufio.NewScanner(strings.NewReader(content))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("curl config line %d is not a header line", len(h)+1)
		}
		h[m[1]] = m[2]
	}
	return h
}

// client create --curl-config writes the seven headers as a curl config,
// mode 0600, that authenticates; the secret is printed nowhere else, and
// an existing file is never replaced.
func TestCLIClientCreateCurlConfig(t *testing.T) {
	c := newCLIEnv(t)
	cu := c.customer("Curl AB")
	dir := t.TempDir()
	file := filepath.Join(dir, "client.curl")
	out, errOut, err := c.run("client", "create", "--customer", cu.ID, "--curl-config", file, "--json")
	if err != nil {
		t.Fatalf("client create --curl-config: %v", err)
	}
	info, err := os.Stat(file)
	if err != nil {
		t.Fatalf("no curl config written: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("curl config mode %o, want 600", perm)
	}
	content, _ := os.ReadFile(file)
	h := cliCurlHeaders(t, string(content))
	var names []string
	for n := range h {
		names = append(names, n)
	}
	slices.Sort(names)
	want := slices.Sorted(slices.Values(cliHeaderNames))
	if !slices.Equal(names, want) {
		t.Errorf("curl config headers %v, want the seven", names)
	}
	secret := h[auth.HeaderClientSecret]
	if len(secret) < 20 {
		t.Fatalf("the curl config's secret is too short")
	}
	if strings.Contains(out, secret) || strings.Contains(errOut, secret) {
		t.Errorf("the secret was printed as well")
	}
	var cl cliClient
	if err := json.Unmarshal([]byte(out), &cl); err != nil || cl.ID != h[auth.HeaderClientEntity] || cl.Headers[auth.HeaderClientSecret] != "" {
		t.Errorf("--json: err %v, or another client, or the secret in headers", err)
	}
	// The headers authenticate.
	app, err := OpenApp(context.Background(), config.Config{Database: c.vars[config.EnvDatabase], MasterKey: c.vars[config.EnvMasterKey]}, cliDiscardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	req, _ := http.NewRequest("GET", "/sales/organization/", nil)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	rec := &cliRecorder{header: http.Header{}}
	app.Handler.ServeHTTP(rec, req)
	if rec.status != http.StatusOK {
		t.Errorf("a request with the curl config's headers: status %d, want 200", rec.status)
	}
	// Text output names the file, not the secret.
	file2 := filepath.Join(dir, "text.curl")
	out, _, err = c.run("client", "create", "--customer", cu.ID, "--curl-config", file2)
	content2, _ := os.ReadFile(file2)
	if err != nil || !strings.Contains(out, file2) || strings.Contains(out, cliCurlHeaders(t, string(content2))[auth.HeaderClientSecret]) {
		t.Errorf("text output: err %v, or the file is not named, or the secret is printed", err)
	}
	// An existing file, or a link, is refused before any client is made.
	link := filepath.Join(dir, "link.curl")
	if err := os.Symlink(filepath.Join(dir, "target"), link); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{file, link} {
		_, _, err := c.run("client", "create", "--customer", cu.ID, "--curl-config", f)
		cliUsage(t, "an existing --curl-config", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "target")); err == nil {
		t.Errorf("the link was followed")
	}
	again, _ := os.ReadFile(file)
	if !bytes.Equal(again, content) {
		t.Errorf("an existing curl config was changed")
	}
	var cls []cliClient
	listOut, _, _ := c.run("client", "list", "--customer", cu.ID, "--json")
	if json.Unmarshal([]byte(listOut), &cls) != nil || len(cls) != 2 {
		t.Errorf("the customer has %d clients, want the 2 made", len(cls))
	}
}

func TestCLIVersion(t *testing.T) {
	c := newCLIEnv(t)
	out, _, err := c.run("version", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("version --json is not a JSON object: %v", err)
	}
	cliSameKeys(t, "version --json", m, "path", "version", "go", "platform", "revision", "time", "modified")
	if text, _, err := c.run("version"); err != nil || !strings.Contains(text, "go1") {
		t.Errorf("version: err %v, or no Go version", err)
	}

	// From a checkout, the VCS revision, its time and whether the tree had
	// changes.
	v := buildVersion(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "accounts", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-11-29T17:04:39Z"}, {Key: "vcs.modified", Value: "true"}}}, true)
	if v.Version != "v1.2.3" || v.Go != "go1.26.8" || v.Revision == nil || *v.Revision != "abc123" ||
		v.Time == nil || *v.Time != "2026-11-29T17:04:39Z" || v.Modified == nil || !*v.Modified {
		t.Errorf("build info with VCS settings: %+v", v)
	}
	if v := buildVersion(nil, false); v.Revision != nil || v.Version == "" || v.Go == "" {
		t.Errorf("no build info: %+v", v)
	}
}

// cliBashComplete runs the bash completion script for a command line whose
// last word is being typed, and returns the words offered.
func cliBashComplete(t *testing.T, script, line string) []string {
	t.Helper()
	words := strings.Split(line, " ")
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, "'"+w+"'")
	}
	prog := script + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) +
		"\n_accounts\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c", prog)
	dir := t.TempDir()
	cmd.Dir = dir
	os.WriteFile(filepath.Join(dir, "cert.pem"), nil, 0o600)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash completion of %q: %v: %s", line, err, out)
	}
	return strings.Fields(string(out))
}

// The completion scripts are made from the command tree: every command and
// every flag completes.
func TestCLICompletion(t *testing.T) {
	c := newCLIEnv(t)
	bash, _, err := c.run("completion", "bash")
	if err != nil {
		t.Fatal(err)
	}
	zsh, _, err := c.run("completion", "zsh")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	groups := cliGroups()
	for group, children := range groups {
		line := strings.TrimSpace("accounts "+group) + " "
		if got := cliBashComplete(t, bash, line); !slices.Equal(got, append(slices.Clone(children), "--help")) {
			t.Errorf("completing %q: %v, want %v", line, got, children)
		}
	}
	for _, path := range cliLeafPaths() {
		line := "accounts " + path + " --"
		want := []string{"--help"}
		for _, f := range cliFlagsOf(t, path) {
			want = append(want, "--"+f)
		}
		slices.Sort(want)
		got := cliBashComplete(t, bash, line)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("completing %q: %v, want %v", line, got, want)
		}
	}
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"accounts cu", []string{"customer"}},
		{"accounts customer cr", []string{"create"}},
		{"accounts client create --customer 6b1f --sc", []string{"--scope"}},
		{"accounts client create --scope ", []string{"read", "read_write"}},
		{"accounts client create --customer create --scope r", []string{"read", "read_write"}},
		{"accounts client list --customer ", nil},
		{"accounts serve --tls-cert ce", []string{"cert.pem"}},
		{"accounts completion ", []string{"bash", "zsh", "--help"}},
		{"accounts help cl", []string{"client"}},
	} {
		if got := cliBashComplete(t, bash, tc.line); !slices.Equal(got, tc.want) {
			t.Errorf("completing %q: %v, want %v", tc.line, got, tc.want)
		}
	}

	if _, err := exec.LookPath("zsh"); err != nil {
		t.Log("zsh is not installed: its script is not checked")
		return
	}
	if out, err := exec.Command("zsh", "-n", "-c", zsh).CombinedOutput(); err != nil {
		t.Errorf("zsh script does not parse: %v: %s", err, out)
	}
	check := "autoload -U compinit && compinit -u -D\n" + zsh + "\nprint -r -- ${_comps[accounts]}\n"
	if out, err := exec.Command("zsh", "-f", "-c", check).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "_accounts" {
		t.Errorf("zsh script does not register _accounts for accounts: %v: %s", err, out)
	}
}

// Help shows the defaults the environment gives, but never a password in
// a postgres:// URL.
func TestCLIHelpMasksDatabasePassword(t *testing.T) {
	c := &cliEnv{t: t, vars: map[string]string{config.EnvDatabase: "postgres://accounts:hunter2-not-shown@db.internal:5432/accounts"}}
	for _, path := range cliLeafPaths() {
		if !slices.Contains(cliFlagsOf(t, path), "database") {
			continue
		}
		out, _, err := c.run(append(cliWords(path), "-h")...)
		if err != nil || !strings.Contains(out, "db.internal") {
			t.Errorf("accounts %s -h: err %v, or the database's default is not shown", path, err)
		}
		if strings.Contains(out, "hunter2") {
			t.Errorf("accounts %s -h shows the database password", path)
		}
	}
}

// customer delete given another deployment's key store (here a new, empty
// one) refuses before it changes anything: the customer, its client and
// its keys stay. A deletion cut short after it recorded itself and
// destroyed the keys (its rows left) finishes when run again, though the
// keys are no longer found.
func TestCLICustomerDeleteNeedsItsKeys(t *testing.T) {
	c := newCLIEnv(t)
	cu := c.customer("Shred Check AB")
	var client cliClient
	c.runJSON(&client, "client", "create", "--customer", cu.ID, "--json")
	keys := keysStored(t, keysLocation(t, c))
	other := filepath.Join(t.TempDir(), "other.keys")
	_, _, err := c.run("customer", "delete", "--id", cu.ID, "--yes", "--key-store", other)
	cliUsage(t, "customer delete with another key store", err)
	if n := keysStored(t, keysLocation(t, c)); n != keys {
		t.Errorf("the deployment's key store holds %d keys after the refusal, want %d", n, keys)
	}
	out, _, err := c.run("client", "list", "--customer", cu.ID, "--json")
	if err != nil || strings.Contains(out, `"revoked_at": "`) {
		t.Errorf("client list after the refusal: err %v, revoked %v", err, strings.Contains(out, `"revoked_at": "`))
	}

	// A deletion cut short: its record and the keys' destruction done.
	ctx := context.Background()
	db, err := openStore(ctx, config.Config{Database: c.vars[config.EnvDatabase]}, schema.New())
	if err != nil {
		t.Fatal(err)
	}
	err = db.AppendAuditAlone(ctx, []audit.Entry{{CustomerID: cu.ID, Time: time.Now().UTC().Truncate(time.Microsecond),
		ClientID: "cli", Action: audit.Delete, Resource: customerResource, ObjectIDs: []string{cu.ID}}})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.Open(ctx, keysLocation(t, c))
	if err != nil {
		t.Fatal(err)
	}
	err = ks.Destroy(ctx, cu.ID)
	ks.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.run("customer", "delete", "--id", cu.ID, "--yes"); err != nil {
		t.Fatalf("customer delete run again after a deletion cut short: %v", err)
	}
	if _, _, err := c.run("client", "list", "--customer", cu.ID); err == nil {
		t.Error("the customer is still there after its deletion was run again")
	}
}

// An empty --since is refused, as an empty --customer is, rather than read
// as no bound.
func TestCLIAuditListEmptySince(t *testing.T) {
	c := newCLIEnv(t)
	cu := c.customer("Since AB")
	_, _, err := c.run("audit", "list", "--customer", cu.ID, "--since", "")
	cliUsage(t, "audit list --since ''", err)
	if _, _, err := c.run("audit", "list", "--customer", cu.ID, "--since", "2026-01-01"); err != nil {
		t.Errorf("audit list --since a date: %v", err)
	}
}

// A flag takes one value: a second is refused and named. A value from the
// environment is the flag's default, which the flag overrides; a boolean
// flag still needs no value; and help reads the flags' own values after
// parsing (their types name the values in its usage lines).
func TestFlagGivenTwice(t *testing.T) {
	bind := func() (*flag.FlagSet, *string, *bool) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return fs, fs.String("addr", "from-env", "listen address"), fs.Bool("on", false, "a switch")
	}
	for _, c := range []struct {
		args     []string
		repeated string
		addr     string
		on       bool
	}{
		{nil, "", "from-env", false},
		{[]string{"--addr", "a", "--on"}, "", "a", true},
		{[]string{"--on=false", "--addr=a"}, "", "a", false},
		{[]string{"--addr", "a", "--addr", "b"}, "addr", "", false},
		{[]string{"--addr=a", "-addr=a"}, "addr", "", false},
		{[]string{"--on", "--on=false"}, "on", "", false},
	} {
		fs, addr, on := bind()
		repeated, err := parseOnce(fs, c.args)
		if repeated != c.repeated || (err != nil) != (c.repeated != "") {
			t.Errorf("%q: repeated %q, err %v; want %q", c.args, repeated, err, c.repeated)
			continue
		}
		if c.repeated == "" && (*addr != c.addr || *on != c.on) {
			t.Errorf("%q: addr %q on %v, want %q %v", c.args, *addr, *on, c.addr, c.on)
		}
		if name, _ := flag.UnquoteUsage(fs.Lookup("addr")); name != "string" {
			t.Errorf("%q: the usage names the value %q after parsing", c.args, name)
		}
		if _, ok := fs.Lookup("on").Value.(interface{ IsBoolFlag() bool }); !ok || fs.Lookup("on").Value.String() != strconv.FormatBool(*on) {
			t.Errorf("%q: the switch's own value is not back after parsing", c.args)
		}
	}
}
