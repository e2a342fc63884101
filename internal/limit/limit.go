// Package limit is the admission control of one process: who may start a
// request now, and who must come back later. Every limit answers at once —
// a refusal is an error of kind Throttled (the caller is over its share:
// 429) or Overloaded (the process is full: 503), with a retry delay — and
// nothing here ever waits for capacity, so a flood can't turn into a queue
// that every other caller stands in.
//
// A nil *Limits admits everything: tests of other packages and tools that
// serve no clients need not configure limits.
package limit

import (
	"sync"
	"sync/atomic"
	"time"

	"accounts/internal/apperr"
)

// Config sets the limits. A zero value turns that limit off.
type Config struct {
	// InFlight caps the API requests the process works on at once, and
	// CustomerInFlight one customer's share of them: without it, one
	// customer's requests that hold their place (bodies sent slowly, up to
	// the request's time limit) could take every place, and every other
	// customer would get 503.
	InFlight         int
	CustomerInFlight int
	// ClientRate is the requests per second a client may make on average,
	// and ClientBurst how many it may make at once above that rate.
	ClientRate  float64
	ClientBurst int
	// CustomerExpensive caps a customer's expensive requests at once (lists
	// that read many rows, bulk writes); Expensive caps the whole
	// process's.
	CustomerExpensive int
	Expensive         int
	// CustomerLists caps a customer's lists in progress at once, cheap or
	// expensive. A list is known to be expensive only once it has read
	// many rows (see records.ExpensiveRows), so without this cap a
	// customer already at CustomerExpensive could still start any number
	// of lists that each read that many rows, holding a database
	// connection, before being refused: a flood that every other
	// customer would queue behind.
	CustomerLists int
	// ListMemory caps the bytes that lists in progress hold in memory
	// (objects held to be sorted).
	ListMemory int64
	// SortRows caps the matches one list may hold to order them by a
	// personal field, which only memory can do.
	SortRows int
	// ListCacheRows is the largest customer's resource whose decrypted
	// objects the list cache keeps (0: no cache). The cache only speeds up
	// lists of small, busy customers; lists are fast without it.
	ListCacheRows int
	// SearchCandidates is the most candidate rows a list reads through the
	// search tokens to answer from them alone (0: lists never use the
	// tokens); a list with more is read in the database's order instead.
	SearchCandidates int
	// AuthWindow is the window in which failed authentications are
	// counted: AddressAuthFailures from one source address, or
	// ClientAuthFailures naming one client id, and further attempts from
	// that address or for that client are refused until the window ends.
	AuthWindow          time.Duration
	AddressAuthFailures int
	ClientAuthFailures  int
	// Connections caps the client connections open at once, and
	// AddressConnections those from one source address (see Listener).
	Connections        int
	AddressConnections int
}

// Reasons name the limit that refused a request: a log field and a metric
// label.
const (
	ReasonInFlight          = "in_flight"
	ReasonCustomerInFlight  = "customer_in_flight"
	ReasonClientRate        = "client_rate"
	ReasonCustomerExpensive = "customer_expensive"
	ReasonExpensive         = "expensive"
	ReasonCustomerLists     = "customer_lists"
	ReasonListMemory        = "list_memory"
	ReasonAddressAuth       = "auth_failures_address"
	ReasonClientAuth        = "auth_failures_client"
)

// busyRetry is the retry delay of a refusal for capacity, which frees as
// soon as a request in progress ends.
const busyRetry = time.Second

// Limits holds the process's counters.
type Limits struct {
	cfg       Config
	now       func() time.Time
	inFlight  atomic.Int64
	expensive atomic.Int64
	memory    atomic.Int64
	customers keyedCounter
	lists     keyedCounter
	working   keyedCounter
	clients   *buckets
	addresses *failureWindows
	clientIDs *failureWindows
	// conns counts the open connections, connAddresses them by source
	// address, connsRefused those closed at once (Listener).
	conns         atomic.Int64
	connAddresses keyedCounter
	connsRefused  atomic.Int64
}

// New returns limits for cfg.
func New(cfg Config) *Limits {
	return newAt(cfg, time.Now)
}

func newAt(cfg Config, now func() time.Time) *Limits {
	return &Limits{
		cfg:           cfg,
		now:           now,
		customers:     keyedCounter{counts: map[string]int{}},
		lists:         keyedCounter{counts: map[string]int{}},
		working:       keyedCounter{counts: map[string]int{}},
		connAddresses: keyedCounter{counts: map[string]int{}},
		clients:       newBuckets(cfg.ClientRate, cfg.ClientBurst),
		addresses:     newFailureWindows(cfg.AuthWindow, cfg.AddressAuthFailures),
		clientIDs:     newFailureWindows(cfg.AuthWindow, cfg.ClientAuthFailures),
	}
}

// Config returns the limits in force.
func (l *Limits) Config() Config {
	if l == nil {
		return Config{}
	}
	return l.cfg
}

// Enter admits a request to the process, or refuses it when InFlight
// requests are in progress. release must be called when it is done.
func (l *Limits) Enter() (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	if !take(&l.inFlight, int64(l.cfg.InFlight), 1) {
		return nil, apperr.Refused(apperr.Overloaded, ReasonInFlight, busyRetry)
	}
	return once(func() { l.inFlight.Add(-1) }), nil
}

// Customer admits one request of an authenticated customer to the process
// it has already entered, refused as Throttled when the customer has
// CustomerInFlight requests in progress. release must be called when it is
// done.
func (l *Limits) Customer(customerID string) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	return l.working.share(customerID, l.cfg.CustomerInFlight, ReasonCustomerInFlight)
}

// Client admits one request of an authenticated client under its rate.
func (l *Limits) Client(clientID string) error {
	if l == nil {
		return nil
	}
	if wait := l.clients.take(clientID, l.now()); wait > 0 {
		return apperr.Refused(apperr.Throttled, ReasonClientRate, wait)
	}
	return nil
}

// Expensive admits one expensive request of a customer: refused as
// Throttled when the customer has CustomerExpensive in progress, as
// Overloaded when the process has Expensive. release must be called when
// the work is done.
func (l *Limits) Expensive(customerID string) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	if !l.customers.take(customerID, l.cfg.CustomerExpensive) {
		return nil, apperr.Refused(apperr.Throttled, ReasonCustomerExpensive, busyRetry)
	}
	if !take(&l.expensive, int64(l.cfg.Expensive), 1) {
		l.customers.give(customerID)
		return nil, apperr.Refused(apperr.Overloaded, ReasonExpensive, busyRetry)
	}
	return once(func() {
		l.expensive.Add(-1)
		l.customers.give(customerID)
	}), nil
}

// List admits one list of a customer, refused as Throttled when the
// customer has CustomerLists in progress. It is asked before the list
// touches the database, so a refusal costs nothing. release must be called
// when the list is done.
func (l *Limits) List(customerID string) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	return l.lists.share(customerID, l.cfg.CustomerLists, ReasonCustomerLists)
}

// HoldListMemory reserves n bytes for a list in progress, refusing when
// lists would hold more than ListMemory. Give them back with
// ReleaseListMemory.
func (l *Limits) HoldListMemory(n int64) error {
	if l == nil {
		return nil
	}
	if !take(&l.memory, l.cfg.ListMemory, n) {
		return apperr.Refused(apperr.Overloaded, ReasonListMemory, busyRetry)
	}
	return nil
}

// ReleaseListMemory gives back bytes reserved by HoldListMemory.
func (l *Limits) ReleaseListMemory(n int64) {
	if l != nil {
		l.memory.Add(-n)
	}
}

// AuthAllowed refuses an authentication attempt from addr for clientID
// (either may be "") while too many recent attempts from that address, or
// for that client, have failed. Refused attempts are not counted, so a
// guesser who keeps trying locks the real client out for at most a window.
func (l *Limits) AuthAllowed(addr, clientID string) error {
	if l == nil {
		return nil
	}
	now := l.now()
	if wait := l.addresses.blocked(addr, now); wait > 0 {
		return apperr.Refused(apperr.Throttled, ReasonAddressAuth, wait)
	}
	if wait := l.clientIDs.blocked(clientID, now); wait > 0 {
		return apperr.Refused(apperr.Throttled, ReasonClientAuth, wait)
	}
	return nil
}

// AuthFailed counts a failed authentication from addr for clientID.
func (l *Limits) AuthFailed(addr, clientID string) {
	if l == nil {
		return
	}
	now := l.now()
	l.addresses.fail(addr, now)
	l.clientIDs.fail(clientID, now)
}

// Usage is what the limits hold now, for metrics.
type Usage struct {
	InFlight, Expensive, ListMemory int64
	// Connections are open now; ConnectionsRefused were closed at once,
	// since the process started.
	Connections, ConnectionsRefused int64
}

// Usage returns the counters' current values.
func (l *Limits) Usage() Usage {
	if l == nil {
		return Usage{}
	}
	return Usage{InFlight: l.inFlight.Load(), Expensive: l.expensive.Load(), ListMemory: l.memory.Load(),
		Connections: l.conns.Load(), ConnectionsRefused: l.connsRefused.Load()}
}

// take adds n to c unless that would pass max (0: no maximum).
func take(c *atomic.Int64, max, n int64) bool {
	if max <= 0 {
		c.Add(n)
		return true
	}
	for {
		cur := c.Load()
		if cur+n > max {
			return false
		}
		if c.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// once makes a release safe to call more than once.
func once(f func()) func() {
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			f()
		}
	}
}

// keyedCounter counts work in progress per key.
type keyedCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (k *keyedCounter) take(key string, max int) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if max > 0 && k.counts[key] >= max {
		return false
	}
	k.counts[key]++
	return true
}

// share admits one more of key's work, refused as Throttled for reason
// when key has max in progress (0: no maximum); release gives it back.
func (k *keyedCounter) share(key string, max int, reason string) (release func(), err error) {
	if max <= 0 {
		// No cap: nothing to count, on every request (requests in flight).
		return func() {}, nil
	}
	if !k.take(key, max) {
		return nil, apperr.Refused(apperr.Throttled, reason, busyRetry)
	}
	return once(func() { k.give(key) }), nil
}

func (k *keyedCounter) give(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.counts[key]--; k.counts[key] <= 0 {
		delete(k.counts, key)
	}
}
