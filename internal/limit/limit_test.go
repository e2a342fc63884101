package limit

import (
	"sync"
	"testing"
	"time"

	"accounts/internal/apperr"
)

// clock is a settable time for the limits under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestLimits(cfg Config) (*Limits, *clock) {
	c := &clock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	return newAt(cfg, c.now), c
}

// refusal checks that err is a refusal of kind k for reason, with a retry
// delay in (0, maxRetry].
func refusal(t *testing.T, err error, k apperr.Kind, reason string, maxRetry time.Duration) {
	t.Helper()
	if apperr.KindOf(err) != k {
		t.Fatalf("error %v: kind %v, want %v", err, apperr.KindOf(err), k)
	}
	got, after := apperr.RefusalOf(err)
	if got != reason {
		t.Errorf("reason %q, want %q", got, reason)
	}
	if after <= 0 || after > maxRetry {
		t.Errorf("retry after %v, want in (0, %v]", after, maxRetry)
	}
}

func TestNilLimitsAdmitEverything(t *testing.T) {
	var l *Limits
	release, err := l.Enter()
	if err != nil {
		t.Fatal(err)
	}
	release()
	if err := l.Client("c"); err != nil {
		t.Fatal(err)
	}
	release, err = l.Expensive("c")
	if err != nil {
		t.Fatal(err)
	}
	release()
	if err := l.HoldListMemory(1 << 40); err != nil {
		t.Fatal(err)
	}
	l.AuthFailed("a", "c")
	if err := l.AuthAllowed("a", "c"); err != nil {
		t.Fatal(err)
	}
}

func TestClientRateBucket(t *testing.T) {
	l, c := newTestLimits(Config{ClientRate: 10, ClientBurst: 5})
	for i := range 5 {
		if err := l.Client("a"); err != nil {
			t.Fatalf("request %d of the burst refused: %v", i, err)
		}
	}
	err := l.Client("a")
	refusal(t, err, apperr.Throttled, ReasonClientRate, 100*time.Millisecond)
	// Another client has its own bucket.
	if err := l.Client("b"); err != nil {
		t.Fatalf("another client refused: %v", err)
	}
	// A token comes back every 100 ms.
	c.advance(100 * time.Millisecond)
	if err := l.Client("a"); err != nil {
		t.Fatalf("refused after a token came back: %v", err)
	}
	if err := l.Client("a"); err == nil {
		t.Fatal("admitted past the rate")
	}
	// The bucket refills to the burst, not beyond.
	c.advance(time.Hour)
	for i := range 5 {
		if err := l.Client("a"); err != nil {
			t.Fatalf("request %d after refilling refused: %v", i, err)
		}
	}
	if err := l.Client("a"); err == nil {
		t.Fatal("the bucket refilled past its burst")
	}
}

func TestInFlightCap(t *testing.T) {
	l, _ := newTestLimits(Config{InFlight: 2})
	r1, err := l.Enter()
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.Enter()
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Enter()
	refusal(t, err, apperr.Overloaded, ReasonInFlight, 5*time.Second)
	r1()
	r1() // a release called twice gives back one slot only
	r3, err := l.Enter()
	if err != nil {
		t.Fatalf("refused after a release: %v", err)
	}
	if _, err := l.Enter(); err == nil {
		t.Fatal("a double release gave back two slots")
	}
	r2()
	r3()
	if got := l.Usage().InFlight; got != 0 {
		t.Errorf("in flight %d after every release, want 0", got)
	}
}

func TestExpensiveCaps(t *testing.T) {
	l, _ := newTestLimits(Config{CustomerExpensive: 2, Expensive: 3})
	a1, err := l.Expensive("A")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := l.Expensive("A")
	if err != nil {
		t.Fatal(err)
	}
	// The customer's cap: 429, and the process slot is not kept.
	_, err = l.Expensive("A")
	refusal(t, err, apperr.Throttled, ReasonCustomerExpensive, 5*time.Second)
	b1, err := l.Expensive("B")
	if err != nil {
		t.Fatalf("another customer refused: %v", err)
	}
	// The process's cap: 503, and the customer's slot is given back.
	_, err = l.Expensive("C")
	refusal(t, err, apperr.Overloaded, ReasonExpensive, 5*time.Second)
	a1()
	c1, err := l.Expensive("C")
	if err != nil {
		t.Fatalf("refused after a release: %v", err)
	}
	for _, r := range []func(){a2, b1, c1} {
		r()
	}
	if got := l.Usage().Expensive; got != 0 {
		t.Errorf("expensive %d after every release, want 0", got)
	}
	if len(l.customers.counts) != 0 {
		t.Errorf("customer counts left behind: %v", l.customers.counts)
	}
}

func TestListMemoryBudget(t *testing.T) {
	l, _ := newTestLimits(Config{ListMemory: 1000})
	if err := l.HoldListMemory(600); err != nil {
		t.Fatal(err)
	}
	refusal(t, l.HoldListMemory(401), apperr.Overloaded, ReasonListMemory, 5*time.Second)
	if err := l.HoldListMemory(400); err != nil {
		t.Fatalf("refused within the budget: %v", err)
	}
	l.ReleaseListMemory(1000)
	if got := l.Usage().ListMemory; got != 0 {
		t.Errorf("list memory %d after release, want 0", got)
	}
}

func TestAuthFailureWindows(t *testing.T) {
	l, c := newTestLimits(Config{AuthWindow: time.Minute, AddressAuthFailures: 5, ClientAuthFailures: 3})
	// Three failures naming one client block that client, from any address.
	for i := range 3 {
		if err := l.AuthAllowed("10.0.0.1", "client-1"); err != nil {
			t.Fatalf("attempt %d refused: %v", i, err)
		}
		l.AuthFailed("10.0.0.1", "client-1")
	}
	refusal(t, l.AuthAllowed("10.0.0.9", "client-1"), apperr.Throttled, ReasonClientAuth, time.Minute)
	if err := l.AuthAllowed("10.0.0.9", "client-2"); err != nil {
		t.Fatalf("another client refused: %v", err)
	}
	// Two more failures from the address, for other clients, block the address.
	l.AuthFailed("10.0.0.1", "client-2")
	l.AuthFailed("10.0.0.1", "")
	refusal(t, l.AuthAllowed("10.0.0.1", "client-3"), apperr.Throttled, ReasonAddressAuth, time.Minute)
	if err := l.AuthAllowed("10.0.0.2", "client-3"); err != nil {
		t.Fatalf("another address refused: %v", err)
	}
	// Attempts refused while blocked are not counted: the block ends with
	// the window that the failures opened, however long a guesser goes on.
	for range 100 {
		c.advance(500 * time.Millisecond)
		if l.AuthAllowed("10.0.0.1", "client-1") == nil {
			t.Fatal("unblocked before the window ended")
		}
	}
	c.advance(10 * time.Second)
	if err := l.AuthAllowed("10.0.0.1", "client-1"); err != nil {
		t.Fatalf("still refused after the window: %v", err)
	}
}

func TestKeyedTablesStayBounded(t *testing.T) {
	l, c := newTestLimits(Config{ClientRate: 1, ClientBurst: 1, AuthWindow: time.Minute, AddressAuthFailures: 1})
	for i := range maxKeys + 100 {
		key := string(rune(0x10000 + i))
		l.AuthFailed(key, "")
		l.Client(key)
	}
	if n := len(l.addresses.byKey); n > maxKeys {
		t.Errorf("%d failure windows, want at most %d", n, maxKeys)
	}
	if n := len(l.clients.byKey); n > maxKeys {
		t.Errorf("%d buckets, want at most %d", n, maxKeys)
	}
	// Once the windows are over and the buckets full, a sweep makes room.
	c.advance(2 * time.Minute)
	l.AuthFailed("late", "")
	if l.AuthAllowed("late", "") == nil {
		t.Error("a new address is not tracked after the old windows ended")
	}
}
