package records

import (
	"fmt"
	"runtime"

	"accounts/internal/apperr"
	"accounts/internal/limit"
	"accounts/internal/query"
)

// ExpensiveRows is how many rows a list may read before it counts as
// expensive work of its customer (see limit.Limits.Expensive): the largest
// page, so that paging through a customer 1,000 at a time never is.
// Whether a list is expensive can't be known from its query (an unpaged
// list by tenant reads one row, one by organization may read them all), so
// it is measured. The HTTP layer holds back as many objects before it
// starts a response, so a list refused here still gets a clean answer.
const ExpensiveRows = 1000

// workMeter counts the rows a list reads, and takes an expensive-work slot
// of the customer once they pass ExpensiveRows, holding it until done. It
// holds one of the customer's list slots from the start (see
// limit.Config.CustomerLists): whether a list will be expensive is known
// only once it has read that many rows, so the lists that are still finding
// out are bounded too.
type workMeter struct {
	limits      *limit.Limits
	customerID  string
	rows        int
	release     func()
	releaseList func()
}

// newWorkMeter admits a list of the customer, before it reads anything.
func newWorkMeter(limits *limit.Limits, customerID string) (*workMeter, error) {
	releaseList, err := limits.List(customerID)
	if err != nil {
		return nil, err
	}
	return &workMeter{limits: limits, customerID: customerID, releaseList: releaseList}, nil
}

// yieldRows is how many rows a list reads between yields of its processor.
// Reading a row is CPU work (decryption, decoding) with no blocking in it,
// so a list of tens of thousands of rows runs for seconds, and Go preempts
// a running goroutine only after 10 ms: on a machine with few cores, every
// other request would wait that long at each step it must be scheduled for
// (its request read, its return from the audit commit's fsync). A yield
// every 64 rows, a fraction of a millisecond of work, lets them in between
// and costs next to nothing when nothing else is waiting.
const yieldRows = 64

func (m *workMeter) row() error {
	m.rows++
	if m.rows%yieldRows == 0 {
		runtime.Gosched()
	}
	if m.rows != ExpensiveRows+1 {
		return nil
	}
	release, err := m.limits.Expensive(m.customerID)
	if err != nil {
		return err
	}
	m.release = release
	return nil
}

func (m *workMeter) done() {
	if m.release != nil {
		m.release()
	}
	m.releaseList()
}

// memorySort holds a list's matches to order them in memory, in bounded
// memory: ordered by a personal field (maxRows above 0, the limits'
// SortRows), it holds at most maxRows matches: more of them are a 400,
// for an unpaged list one that names the paged alternative, for a page
// ending past maxRows one on _page (a page past the end of at most maxRows
// matches is empty, as in any other order); a page keeps only the best
// matches up to its end; and every object held is reserved against the
// process's list memory (else a 503).
type memorySort struct {
	limits      *limit.Limits
	order       []query.OrderKey
	first, last int
	// keep is how many of the best matches a page needs; 0 for all.
	keep    int
	maxRows int
	objs    []Object
	held    int64
	matches int
}

func newMemorySort(limits *limit.Limits, q query.Query, first, last, maxRows int) *memorySort {
	ms := &memorySort{limits: limits, order: q.Order, first: first, last: last, maxRows: maxRows}
	if last >= 0 {
		ms.keep = last + 1
	}
	return ms
}

// sortRows is the most matches a list of plan pl may order: the limits'
// SortRows when it orders by a personal field, else no bound (0). Every
// way of answering the list holds it to the same bound, so that whether
// the cache served it never changes the answer.
func (s *Service) sortRows(pl listPlan) int {
	if pl.order != nil {
		return 0
	}
	return s.limits.Config().SortRows
}

// errPageBeyondSort refuses a page that ends past the maxRows matches
// ordering by a personal field may hold, when more than maxRows match.
func errPageBeyondSort(maxRows int) error {
	return apperr.FieldErrors{"_page": {fmt.Sprintf(
		"Ordering by a personal field keeps at most %d matches in memory, and this page lies beyond them: narrow the list with filters.", maxRows)}}.Err()
}

// errUnpagedSort refuses an unpaged list ordered by a personal field with
// more than maxRows matches.
func errUnpagedSort(maxRows int) error {
	return apperr.FieldErrors{"_order_by": {fmt.Sprintf(
		"Ordering by a personal field sorts in memory, at most %d matches: ask for the list in pages with _page and _page_size, or narrow it with filters.", maxRows)}}.Err()
}

// add takes in one match.
func (ms *memorySort) add(obj Object) error {
	ms.matches++
	if ms.maxRows > 0 && ms.matches > ms.maxRows {
		if ms.keep == 0 {
			return errUnpagedSort(ms.maxRows)
		}
		if ms.keep > ms.maxRows {
			return errPageBeyondSort(ms.maxRows)
		}
	}
	n := objectBytes(obj)
	if err := ms.limits.HoldListMemory(n); err != nil {
		return err
	}
	ms.held += n
	ms.objs = append(ms.objs, obj)
	if ms.keep > 0 && len(ms.objs) >= 2*ms.keep {
		// Keep the best keep matches: the rest can't be on the page.
		sortObjects(ms.objs, ms.order)
		var freed int64
		for _, o := range ms.objs[ms.keep:] {
			freed += objectBytes(o)
		}
		clear(ms.objs[ms.keep:])
		ms.objs = ms.objs[:ms.keep]
		ms.limits.ReleaseListMemory(freed)
		ms.held -= freed
	}
	return nil
}

// emit sorts the matches held and emits those in the window.
func (ms *memorySort) emit(emit func(Object) error) error {
	sortObjects(ms.objs, ms.order)
	for i := ms.first; i < len(ms.objs) && (ms.last < 0 || i <= ms.last); i++ {
		if err := emit(ms.objs[i]); err != nil {
			return err
		}
	}
	return nil
}

// release gives back the memory reserved.
func (ms *memorySort) release() {
	ms.limits.ReleaseListMemory(ms.held)
	ms.held = 0
}

// objectBytes estimates the memory a decoded object holds: its header and
// map, and per value the map entry and the string's bytes.
func objectBytes(o Object) int64 {
	n := 256
	for k, v := range o.Values {
		n += 48 + len(k)
		if s, ok := v.(string); ok {
			n += len(s)
		}
	}
	return int64(n)
}
