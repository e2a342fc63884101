package crashtest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// The ledger is what the test knows of the database from the server's
// answers alone. Its rules:
//
//   - An acknowledged write (201 with the object, 200 with the object, 204)
//     fixes the object's state exactly: present with the acknowledged values,
//     or absent.
//   - A write without an answer (the kill cut it off) leaves the object in
//     its state before the write or after it: both become possible, nothing
//     else. A delete can take a tenant's identity with it (cascade).
//   - A create without an answer has no id to follow; its custom_id (a token
//     unique to the test) finds it. It may exist or not, but with every value
//     it was sent; a bulk write's creates exist all or none, and its update
//     is applied exactly when they exist.
//   - After a restart nothing is in flight (the process that sent it is
//     dead and, on PostgreSQL, its sessions have ended), so what the
//     restarted server shows is final: each object must be in one of its
//     possible states, and the ledger then holds exactly that one. A row the
//     ledger can't account for fails the test too.
//
// So an acknowledged create must be there unless a delete (acknowledged or
// cut off) followed it, and an acknowledged delete must stay done.

// compared names the fields the ledger follows: the personal fields the load
// writes, custom_id (the token of each create) and an identity's tenant.
func compared(path string) []string {
	if path == piPath {
		return []string{"first_name", "last_name", "email", "ssn", "custom_id", "tenant"}
	}
	return []string{"first_name", "last_name", "email", "ssn", "custom_id"}
}

// fields holds the compared fields' values: a string or nil (JSON null).
type fields map[string]any

// fieldsOf takes the compared fields from an object the server returned; a
// reference becomes its id.
func fieldsOf(path string, obj map[string]any) fields {
	f := fields{}
	for _, name := range compared(path) {
		v := obj[name]
		if ref, ok := v.(map[string]any); ok {
			v = ref["id"]
		}
		f[name] = v
	}
	return f
}

// differing names the fields whose values differ. Names only: a message must
// never carry a personal value.
func differing(a, b fields) []string {
	var names []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if a[k] != b[k] {
			names = append(names, k)
		}
	}
	return names
}

// state is an object's state in the database.
type state struct {
	present bool
	fields  fields // nil when absent
}

var absent = state{}

func (s state) equal(o state) bool {
	return s.present == o.present && (!s.present || len(differing(s.fields, o.fields)) == 0)
}

func (s state) String() string {
	if s.present {
		return "present"
	}
	return "absent"
}

// object is one row the ledger follows.
type object struct {
	id, path, token string
	tenant          *object // an identity's tenant
	pi              *object // a tenant's identity, once one is known to exist
	piTried         bool    // a tenant has been sent an identity: never send a second
	states          []state // the states it may be in; exactly one when known
	written         bool    // written to since the last restart's check
	// orphanOf is the tenant whose cut-off delete may have cascaded to this
	// identity: the identity must be gone exactly when the tenant is.
	orphanOf *object
}

func (o *object) exact() (state, bool) {
	if len(o.states) != 1 {
		return state{}, false
	}
	return o.states[0], true
}

// present reports whether the object is known to exist: the load writes to
// such objects only.
func (o *object) present() bool {
	s, ok := o.exact()
	return ok && s.present
}

// set records an acknowledged write.
func (o *object) set(s state) { o.states, o.written = []state{s}, true }

// maybe records a write without an answer: one more state the object may
// be in.
func (o *object) maybe(s state) {
	o.written = true
	for _, have := range o.states {
		if have.equal(s) {
			return
		}
	}
	o.states = append(o.states, s)
}

func (o *object) kind() string {
	if o.path == piPath {
		return "identity"
	}
	return "tenant"
}

// pendingItem is a create that got no answer.
type pendingItem struct {
	token  string
	want   fields
	tenant *object // an identity's tenant
}

// pending is a create, or a bulk write, that got no answer.
type pending struct {
	path      string
	items     []pendingItem
	update    *object // a bulk write's updated object, or nil
	pre, post state   // its state before and after the bulk write
}

// counts are what the load wrote and what the checks looked at.
type counts struct {
	creates, updates, deletes int // acknowledged
	cutOff                    int // writes without an answer
	cutOffApplied             int // ... that the restarted server shows done
	objectChecks              int // objects compared with the ledger after a restart
	gets                      int // of them written since the previous check, so also read by id
	rows                      int // rows listed (each one decrypted)
}

func (c *counts) add(o counts) {
	c.creates += o.creates
	c.updates += o.updates
	c.deletes += o.deletes
	c.cutOff += o.cutOff
	c.cutOffApplied += o.cutOffApplied
	c.objectChecks += o.objectChecks
	c.gets += o.gets
	c.rows += o.rows
}

// listAll lists a collection unpaged, which decrypts every row of the
// customer: a row that no longer opens fails the list (a 500, or a stream
// cut short), and so the test.
func (r *run) listAll(srv *server, path string) []map[string]any {
	r.t.Helper()
	status, data, err := srv.read(r.headers, path)
	if err != nil || status != http.StatusOK {
		r.t.Fatalf("listing %s after a restart: status %d, err %v", path, status, err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(data, &rows); err != nil {
		r.t.Fatalf("listing %s after a restart: the answer is not a complete JSON array: %v", path, err)
	}
	return rows
}

type listed struct {
	path string
	row  map[string]any
}

// check compares the restarted server with the ledger and then makes the
// ledger hold what it shows (see the rules above).
func (r *run) check(srv *server) {
	r.t.Helper()
	var c counts
	rows := map[string]listed{}
	byToken := map[string]listed{}
	for _, path := range []string{tenantPath, piPath} {
		for _, row := range r.listAll(srv, path) {
			c.rows++
			id, _ := row["id"].(string)
			if _, dup := rows[id]; dup || id == "" {
				r.t.Errorf("%s: id %q listed twice or empty", path, id)
			}
			rows[id] = listed{path, row}
			if token, ok := row["custom_id"].(string); ok {
				if _, dup := byToken[token]; dup {
					r.t.Errorf("%s %s: a create's token is on two rows", path, id)
				}
				byToken[token] = listed{path, row}
			}
		}
	}
	observe := func(o *object) state {
		if l, ok := rows[o.id]; ok && l.path == o.path {
			return state{true, fieldsOf(o.path, l.row)}
		}
		return absent
	}

	known := map[string]bool{}
	var written []*object
	for _, w := range r.workers {
		for _, o := range w.objects {
			c.objectChecks++
			got := observe(o)
			r.compare(o, got)
			if len(o.states) > 1 && o.orphanOf == nil && !got.equal(o.states[0]) {
				c.cutOffApplied++
			}
			o.states = []state{got} // what the restarted server shows is final
		}
		for _, o := range w.objects {
			if t := o.orphanOf; t != nil {
				if s, _ := t.exact(); s.present && !o.present() {
					r.t.Errorf("identity %s is gone but its tenant %s is there: a cut-off delete of the tenant was half applied", o.id, t.id)
				}
				o.orphanOf = nil
			}
		}
		for _, p := range w.pending {
			applied := r.resolve(w, p, byToken, observe)
			if applied {
				c.cutOffApplied++
			}
			for _, it := range p.items {
				if !applied {
					r.gone[it.token] = true
				}
			}
		}
		w.pending = nil
		for _, o := range w.objects {
			known[o.id] = true
			if o.written {
				written = append(written, o)
				o.written = false
			}
		}
	}
	for id, l := range rows {
		if known[id] {
			continue
		}
		token, _ := l.row["custom_id"].(string)
		if r.gone[token] {
			r.t.Errorf("%s %s: a cut-off create missing after its restart appeared later", l.path, id)
		} else {
			r.t.Errorf("%s %s: a row no write of this test made", l.path, id)
		}
	}
	// Every listed identity's tenant is listed: a cascade never half applies.
	for id, l := range rows {
		if l.path != piPath {
			continue
		}
		ref, _ := l.row["tenant"].(map[string]any)
		if t, ok := rows[fmt.Sprint(ref["id"])]; !ok || t.path != tenantPath {
			r.t.Errorf("identity %s: its tenant is not listed", id)
		}
	}
	// The list compared every object; the ones written since the last
	// restart are also read by id (an object not written since was read so
	// at an earlier restart, and the list shows it unchanged).
	c.gets = r.getAll(srv, written)
	r.total.add(c)
}

// compare reports an object whose state after a restart is none of its
// possible ones, saying which rule broke.
func (r *run) compare(o *object, got state) {
	for _, s := range o.states {
		if s.equal(got) {
			return
		}
	}
	if want, ok := o.exact(); ok {
		switch {
		case want.present && !got.present:
			r.t.Errorf("%s %s: acknowledged, and gone after a restart (a lost write)", o.kind(), o.id)
		case !want.present:
			r.t.Errorf("%s %s: acknowledged as deleted, and back after a restart", o.kind(), o.id)
		default:
			r.t.Errorf("%s %s: after a restart these fields differ from the acknowledged values: %s",
				o.kind(), o.id, strings.Join(differing(want.fields, got.fields), ", "))
		}
		return
	}
	var alternatives []string
	for _, s := range o.states {
		if s.present && got.present {
			alternatives = append(alternatives, "present with "+strings.Join(differing(s.fields, got.fields), ", ")+" different")
		} else {
			alternatives = append(alternatives, s.String())
		}
	}
	r.t.Errorf("%s %s: after a restart %s, which is none of its possible states (%s)",
		o.kind(), o.id, got, strings.Join(alternatives, "; "))
}

// resolve finds what became of a cut-off create or bulk write, checks it
// was all or nothing with every value it was sent, and adopts the created
// objects into the ledger. It reports whether the write was applied.
func (r *run) resolve(w *worker, p *pending, byToken map[string]listed, observe func(*object) state) bool {
	var found []*object
	for _, it := range p.items {
		l, ok := byToken[it.token]
		if !ok {
			continue
		}
		o := &object{id: l.row["id"].(string), path: p.path, token: it.token, tenant: it.tenant}
		got := state{true, fieldsOf(p.path, l.row)}
		if l.path != p.path {
			r.t.Errorf("%s %s: a cut-off create landed in another collection", o.kind(), o.id)
		} else if diff := differing(it.want, got.fields); len(diff) > 0 {
			r.t.Errorf("%s %s: a cut-off create is there with these fields not as sent: %s", o.kind(), o.id, strings.Join(diff, ", "))
		}
		o.set(got)
		if it.tenant != nil {
			if it.tenant.pi != nil {
				r.t.Errorf("tenant %s: a second identity %s", it.tenant.id, o.id)
			}
			it.tenant.pi = o
		}
		w.objects = append(w.objects, o)
		found = append(found, o)
	}
	applied := len(found) == len(p.items)
	if len(found) > 0 && !applied {
		r.t.Errorf("a cut-off bulk write is half applied: %d of its %d creates are there", len(found), len(p.items))
	}
	if u := p.update; u != nil {
		want := p.pre
		if applied {
			want = p.post
		}
		if got := observe(u); !got.equal(want) {
			r.t.Errorf("tenant %s: a cut-off bulk write's update is not applied exactly when its %d creates are (%d there)",
				u.id, len(p.items), len(found))
		}
	}
	return applied
}

// getAll reads every object by id, eight at a time: one present must answer
// 200 with its values, one absent 404. It returns how many it read.
func (r *run) getAll(srv *server, objs []*object) int {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(objs) {
					return
				}
				o := objs[i]
				want, _ := o.exact()
				status, data, err := srv.read(r.headers, o.path+o.id+"/")
				switch {
				case err != nil:
					r.t.Errorf("GET %s %s: %v", o.kind(), o.id, err)
				case !want.present && status != http.StatusNotFound:
					r.t.Errorf("GET %s %s: status %d, want 404 (it is deleted)", o.kind(), o.id, status)
				case want.present && status != http.StatusOK:
					r.t.Errorf("GET %s %s: status %d, want 200", o.kind(), o.id, status)
				case want.present:
					var obj map[string]any
					if err := json.Unmarshal(data, &obj); err != nil {
						r.t.Errorf("GET %s %s: not a JSON object", o.kind(), o.id)
					} else if diff := differing(want.fields, fieldsOf(o.path, obj)); len(diff) > 0 {
						r.t.Errorf("GET %s %s: fields differ from the list's: %s", o.kind(), o.id, strings.Join(diff, ", "))
					}
				}
			}
		}()
	}
	wg.Wait()
	return len(objs)
}
