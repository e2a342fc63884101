package auth_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"accounts/internal/apperr"
	"accounts/internal/auth"
	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/sqlite"

	"github.com/google/uuid"
)

// pigelloHeaders are the seven header names of the contract, in the order
// of issuedClient.values; spelled out here rather than taken from package
// auth, so that a renamed constant shows.
var pigelloHeaders = [7]string{
	"X-PIGELLO-CUSTOMER-ID",
	"X-PIGELLO-APPLICATION-ID",
	"X-PIGELLO-SERVICE-ID",
	"X-PIGELLO-SERVICE-VERSION-ID",
	"X-PIGELLO-CLIENT-CT",
	"X-PIGELLO-CLIENT-ENTITY",
	"X-PIGELLO-CLIENT-SECRET",
}

// issuedClient is a client as its holder knows it: the seven values it
// sends, and whether it may still authenticate.
type issuedClient struct {
	client store.Client
	values [7]string
	live   bool
}

// issueClients registers two customers in a real SQLite store and issues
// four clients: a read_write and a read client of the first customer, a
// revoked one of the first, and one of the second.
func issueClients(tb testing.TB) (*sqlite.DB, []issuedClient) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "accounts.db"), schema.New())
	if err != nil {
		tb.Fatalf("opening the store: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	now := time.Now().UTC().Truncate(time.Microsecond)
	var customers [2]string
	for i := range customers {
		customers[i] = uuid.NewString()
		if err := db.CreateCustomer(ctx, store.Customer{ID: customers[i], Name: "Fuzz customer", CreatedAt: now}); err != nil {
			tb.Fatalf("creating a customer: %v", err)
		}
	}
	var issued []issuedClient
	for _, x := range []struct {
		customer string
		scope    auth.Scope
		revoked  bool
	}{
		{customers[0], auth.ReadWrite, false},
		{customers[0], auth.Read, false},
		{customers[0], auth.ReadWrite, true},
		{customers[1], auth.ReadWrite, false},
	} {
		c, secret := auth.Issue(x.customer, x.scope, now)
		if err := db.CreateClient(ctx, c); err != nil {
			tb.Fatalf("creating a client: %v", err)
		}
		if x.revoked {
			if err := db.RevokeClient(ctx, c.ID, now); err != nil {
				tb.Fatalf("revoking a client: %v", err)
			}
		}
		issued = append(issued, issuedClient{
			client: c,
			values: [7]string{c.CustomerID, c.ApplicationID, c.ServiceID, c.ServiceVersionID, c.ClientCT, c.ID, secret},
			live:   !x.revoked,
		})
	}
	return db, issued
}

// What FuzzAuthenticate sends for one header, given the chosen client's
// value for it (base) and a fuzz-given value (v). Modes beyond the last
// wrap around.
const (
	sendExact       = iota // base
	sendMissing            // nothing
	sendFuzz               // v
	sendTwice              // base, base
	sendThenFuzz           // base, v
	sendFuzzThen           // v, base
	sendPrefixed           // v+base (v is whitespace in the seeds)
	sendSuffixed           // base+v
	sendCaseSwapped        // base with the case of its ASCII letters swapped
	sendHighBit            // base with the high bit of byte len(v) set: not UTF-8
	sendLong               // base followed by v (or "0") up to 64 KiB
	sendOthers             // the next client's value
	sendLowerName          // base, under the name in lower case
	sendUnderscored        // base, under the name with '_' for '-': another header
	sendModes
)

// FuzzAuthenticate authenticates headers built from fuzz-given choices
// and values for the seven X-PIGELLO-* headers (missing, doubled, altered,
// very long, not UTF-8, padded, another client's) against clients issued
// into a real SQLite store. The oracle, computed from what the test sent:
// success exactly when each of the seven headers carries one value equal,
// byte for byte, to that of one live client (the five UUIDs in either
// case of their ASCII letters), and then the principal is
// that client's customer, id and scope; any other outcome is
// Unauthenticated with no principal, never another error or a panic.
// Failures print modes and lengths, never a value: the secret is a
// credential.
func FuzzAuthenticate(f *testing.F) {
	db, issued := issueClients(f)
	a := auth.NewAuthenticator(db)
	var none [7]string
	f.Add(byte(0), []byte{}, none[0], none[1], none[2], none[3], none[4], none[5], none[6])
	f.Add(byte(1), []byte{}, none[0], none[1], none[2], none[3], none[4], none[5], none[6])
	f.Add(byte(2), []byte{}, none[0], none[1], none[2], none[3], none[4], none[5], none[6])
	f.Add(byte(3), []byte{}, none[0], none[1], none[2], none[3], none[4], none[5], none[6])
	for i := range pigelloHeaders {
		for _, mode := range []byte{sendMissing, sendTwice, sendCaseSwapped, sendHighBit, sendLong, sendOthers, sendLowerName, sendUnderscored} {
			modes := make([]byte, 7)
			modes[i] = mode
			f.Add(byte(0), modes, none[0], none[1], none[2], none[3], none[4], none[5], none[6])
		}
		for _, ws := range []string{" ", "\t", "\r\n", "\u00a0", "\x00", ""} {
			for _, mode := range []byte{sendPrefixed, sendSuffixed, sendFuzz, sendThenFuzz, sendFuzzThen} {
				modes := make([]byte, 7)
				modes[i] = mode
				v := none
				v[i] = ws
				f.Add(byte(0), modes, v[0], v[1], v[2], v[3], v[4], v[5], v[6])
			}
		}
	}
	// A fuzz-given value that is the real one: the client content type is
	// the same for every client.
	ct := none
	ct[4] = auth.ClientCT
	f.Add(byte(1), []byte{0, 0, 0, 0, sendFuzz}, ct[0], ct[1], ct[2], ct[3], ct[4], ct[5], ct[6])
	f.Add(byte(1), []byte{0, 0, 0, 0, sendFuzzThen}, ct[0], ct[1], ct[2], ct[3], ct[4], ct[5], ct[6])
	f.Add(byte(0), []byte{sendOthers, 0, 0, 0, 0, 0, 0}, none[0], none[1], none[2], none[3], none[4], none[5], none[6])

	f.Fuzz(func(t *testing.T, which byte, modes []byte, v0, v1, v2, v3, v4, v5, v6 string) {
		fuzzed := [7]string{v0, v1, v2, v3, v4, v5, v6}
		base := issued[int(which)%len(issued)]
		next := issued[(int(which)+1)%len(issued)]
		h := http.Header{}
		// sent is what the test put under each header name, in order:
		// the oracle's own record, not read back from h.
		var sent [7][]string
		var used [7]byte
		for i, name := range pigelloHeaders {
			mode := byte(sendExact)
			if i < len(modes) {
				mode = modes[i] % sendModes
			}
			used[i] = mode
			b, v := base.values[i], fuzzed[i]
			send := func(values ...string) {
				for _, x := range values {
					h.Add(name, x)
				}
				sent[i] = append(sent[i], values...)
			}
			switch mode {
			case sendExact:
				send(b)
			case sendMissing:
			case sendFuzz:
				send(v)
			case sendTwice:
				send(b, b)
			case sendThenFuzz:
				send(b, v)
			case sendFuzzThen:
				send(v, b)
			case sendPrefixed:
				send(v + b)
			case sendSuffixed:
				send(b + v)
			case sendCaseSwapped:
				send(swapCase(b))
			case sendHighBit:
				x := []byte(b)
				x[len(v)%len(x)] |= 0x80
				send(string(x))
			case sendLong:
				pad := v
				if pad == "" {
					pad = "0"
				}
				send(b + strings.Repeat(pad, 1<<16/len(pad)))
			case sendOthers:
				send(next.values[i])
			case sendLowerName:
				// Header names are case-insensitive (RFC 9110 section 5.1).
				h.Add(strings.ToLower(name), b)
				sent[i] = append(sent[i], b)
			case sendUnderscored:
				h.Add(strings.ReplaceAll(name, "-", "_"), b)
			}
		}

		var want *issuedClient
		for c := range issued {
			if issued[c].live && sentExactly(sent, issued[c].values) {
				want = &issued[c]
			}
		}
		p, err := a.Authenticate(context.Background(), h)
		if want != nil {
			if err != nil {
				t.Fatalf("modes %v: the seven values of a live client were refused: %v", used, err)
			}
			w := auth.Principal{CustomerID: want.client.CustomerID, ClientID: want.client.ID, Scope: auth.Scope(want.client.Scope)}
			if p != w {
				t.Fatalf("modes %v: authenticated as another principal (same customer %v, same client %v, scope %q, want %q)",
					used, p.CustomerID == w.CustomerID, p.ClientID == w.ClientID, p.Scope, w.Scope)
			}
			return
		}
		if err == nil {
			t.Fatalf("modes %v (client %d): authenticated without the seven exact values of a live client; %s",
				used, int(which)%len(issued), describe(sent))
		}
		if k := apperr.KindOf(err); k != apperr.Unauthenticated {
			t.Fatalf("modes %v: refused as %v, want unauthenticated", used, k)
		}
		if p != (auth.Principal{}) {
			t.Fatalf("modes %v: refused, yet with a principal", used)
		}
	})
}

// sentExactly reports whether each header was sent once, with exactly the
// client's value (Go compares strings byte for byte), but for the five
// UUIDs, whose ASCII letters may be in either case.
func sentExactly(sent [7][]string, values [7]string) bool {
	for i := range sent {
		if len(sent[i]) != 1 {
			return false
		}
		v := sent[i][0]
		if uuidHeader[i] {
			v = asciiLower(v)
		}
		if v != values[i] {
			return false
		}
	}
	return true
}

// uuidHeader marks the headers that carry UUIDs, in pigelloHeaders' order:
// all but the content type and the secret.
var uuidHeader = [7]bool{true, true, true, true, false, true, false}

// asciiLower lower-cases the ASCII letters of s and nothing else.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// describe says how many values each header carried and their lengths.
func describe(sent [7][]string) string {
	var b strings.Builder
	for i, values := range sent {
		b.WriteString(pigelloHeaders[i])
		b.WriteString(": lengths")
		for _, v := range values {
			b.WriteString(" ")
			b.WriteString(strconv.Itoa(len(v)))
		}
		b.WriteString("; ")
	}
	return b.String()
}

func swapCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}
