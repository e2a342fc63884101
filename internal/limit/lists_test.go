package limit

import (
	"testing"

	"accounts/internal/apperr"
)

// The caps per customer — lists in progress, requests in flight — refuse
// a customer at its cap as Throttled, never another customer, and give a
// place back once per release.
func TestPerCustomerCaps(t *testing.T) {
	for _, c := range []struct {
		name   string
		cfg    Config
		enter  func(l *Limits, customer string) (func(), error)
		reason string
	}{
		{"lists", Config{CustomerLists: 2}, (*Limits).List, ReasonCustomerLists},
		{"in flight", Config{CustomerInFlight: 2}, (*Limits).Customer, ReasonCustomerInFlight},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := New(c.cfg)
			r1, err := c.enter(l, "a")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.enter(l, "a"); err != nil {
				t.Fatal(err)
			}
			_, err = c.enter(l, "a")
			if apperr.KindOf(err) != apperr.Throttled {
				t.Fatalf("third of a customer with a cap of 2: %v, want Throttled", err)
			}
			if reason, after := apperr.RefusalOf(err); reason != c.reason || after <= 0 {
				t.Errorf("refusal: reason %q, retry after %v", reason, after)
			}
			if _, err := c.enter(l, "b"); err != nil {
				t.Errorf("another customer refused: %v", err)
			}
			r1()
			r1()
			if _, err := c.enter(l, "a"); err != nil {
				t.Errorf("after a release: %v", err)
			}
			if _, err := c.enter(l, "a"); err == nil {
				t.Error("a repeated release freed a second place")
			}

			var off *Limits
			if _, err := c.enter(off, "a"); err != nil {
				t.Errorf("nil Limits: %v", err)
			}
			unlimited := New(Config{})
			for range 100 {
				if _, err := c.enter(unlimited, "a"); err != nil {
					t.Fatalf("cap 0 (off): %v", err)
				}
			}
		})
	}
}
