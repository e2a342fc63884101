package limit

import (
	"testing"

	"accounts/internal/apperr"
)

// A customer's lists are capped at CustomerLists at once, each customer on
// its own; a refusal is Throttled with its reason, and a release (even a
// repeated one) frees exactly one slot.
func TestCustomerListsCap(t *testing.T) {
	l := New(Config{CustomerLists: 2})
	r1, err := l.List("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.List("a"); err != nil {
		t.Fatal(err)
	}
	_, err = l.List("a")
	if apperr.KindOf(err) != apperr.Throttled {
		t.Fatalf("third list of a customer with a cap of 2: %v, want Throttled", err)
	}
	if reason, after := apperr.RefusalOf(err); reason != ReasonCustomerLists || after <= 0 {
		t.Errorf("refusal: reason %q, retry after %v", reason, after)
	}
	if _, err := l.List("b"); err != nil {
		t.Errorf("another customer's list refused: %v", err)
	}
	r1()
	r1()
	if _, err := l.List("a"); err != nil {
		t.Errorf("after a release: %v", err)
	}
	if _, err := l.List("a"); err == nil {
		t.Error("a repeated release freed a second slot")
	}

	var off *Limits
	if _, err := off.List("a"); err != nil {
		t.Errorf("nil Limits: %v", err)
	}
	unlimited := New(Config{})
	for range 100 {
		if _, err := unlimited.List("a"); err != nil {
			t.Fatalf("CustomerLists 0 (off): %v", err)
		}
	}
}
