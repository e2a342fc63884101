package httpapi

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"accounts/internal/limit"
	"accounts/internal/query"
	"accounts/internal/records"
)

// listWriter writes a list body in the form the query asks for: a JSON
// array, the statistics envelope, or JSON Lines. It holds back the first
// holdBack objects before anything goes out (a page is never more), so that a list that fails or
// is refused early (records asks for an expensive-work slot once a list
// has read that many rows) still gets a clean error response, and a page
// is one write.
//
// Past that it goes on holding the list, up to readAhead bytes, while the
// list memory lets it: a list is read from the database in one read
// transaction, and a client that takes its answer slowly (or an HTTP/2
// client that grants it a trickle) would otherwise hold that transaction
// open as long as it liked, and with it SQLite's WAL, which no checkpoint
// can then restart, and which grows with every write meanwhile (on
// PostgreSQL, a snapshot that holds back vacuum). Held, the list is read
// at the database's pace and sent at the client's once the transaction
// has ended. Only a list larger than that streams as it is read, each
// object as it comes, without holding the result in memory.
type listWriter struct {
	w      http.ResponseWriter
	r      *http.Request
	q      query.Query
	limits *limit.Limits
	buf    *bufio.Writer
	held   []byte
	// reserved is the list memory held for held (Limits.HoldListMemory).
	reserved int64
	// streaming is set once holding more was refused: the list is then
	// written as it is read.
	streaming bool
	// heldBuf is the pooled slice held grows in, returned to listBuffers
	// once held has been written.
	heldBuf *[]byte
	// scratch is where each object of a stream is encoded, once held is
	// out: one object's size, reused.
	scratch []byte
	started bool
	n       int
	// sendErr is the first error writing to the client: a client that
	// went away, or did not take the stream in time.
	sendErr error
}

// holdBack is how many objects a list holds before it starts streaming:
// as many as records may read before it counts a list as expensive (and
// then perhaps refuses it), so that every refusal comes before the answer.
const holdBack = records.ExpensiveRows

// readAhead bounds how much of a list is held in memory before anything
// goes out (some 80,000 protected identities in their full form), and
// stretchBytes is how much of what was held a client is given
// streamSlack to take at a time.
const (
	readAhead    = 32 << 20
	stretchBytes = 64 << 10
)

// streamSlack is how long a client of a streaming list may take to accept
// the next stretch of it (streamStep objects): every stretch sets a new
// write deadline and renews the request's time limit, so a live transfer
// is never cut by a limit on the whole response, and a stalled one is.
const (
	streamSlack = 30 * time.Second
	streamStep  = 100
)

// A list's buffers are kept between lists: the objects held back (a page
// of 100 identities is about 100 KiB, which appending from nothing grew
// through a dozen copies, every one garbage for the collector to chase)
// and the writer of the stream. Reused, the harness's list scenario cost
// less than half the CPU a request (docs/benchmarks.md).
// A held buffer larger than maxPooledListBuffer (a page of some thousand
// objects) is left to the collector rather than kept at that size.
var (
	listBuffers = sync.Pool{New: func() any { return new([]byte) }}
	listWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}
)

const maxPooledListBuffer = 512 << 10

func newListWriter(w http.ResponseWriter, r *http.Request, q query.Query, limits *limit.Limits) *listWriter {
	held := listBuffers.Get().(*[]byte)
	return &listWriter{w: w, r: r, q: q, limits: limits, held: (*held)[:0], heldBuf: held}
}

// start writes the status, headers and what was held back.
func (lw *listWriter) start() {
	lw.started = true
	if lw.q.JSONL {
		lw.w.Header().Set("Content-Type", "application/jsonl")
	} else {
		lw.w.Header().Set("Content-Type", "application/json")
	}
	lw.renew()
	lw.w.WriteHeader(http.StatusOK)
	lw.buf = listWriters.Get().(*bufio.Writer)
	lw.buf.Reset(lw.w)
	// Copied out (or buffered) before Write returns; a stretch at a time,
	// each with its own deadline.
	for rest := lw.held; len(rest) > 0 && lw.sendErr == nil; {
		n := min(len(rest), stretchBytes)
		_, err := lw.buf.Write(rest[:n])
		lw.sent(err)
		if rest = rest[n:]; len(rest) > 0 {
			lw.renew()
		}
	}
	if cap(lw.held) <= maxPooledListBuffer {
		*lw.heldBuf = lw.held
		listBuffers.Put(lw.heldBuf)
	}
	lw.held, lw.heldBuf = nil, nil
	lw.dropReserved()
}

// holdMore reports whether the list may go on gathering in memory, taking
// list memory for what it holds; when not, it is to stream from now on.
func (lw *listWriter) holdMore() bool {
	held := int64(cap(lw.held))
	if lw.streaming || held > readAhead {
		lw.streaming = true
		return false
	}
	if held > lw.reserved {
		if lw.limits.HoldListMemory(held-lw.reserved) != nil {
			lw.streaming = true
			return false
		}
		lw.reserved = held
	}
	return true
}

// dropReserved gives back the list memory held; the handler defers it, for
// a list that ends before it starts.
func (lw *listWriter) dropReserved() {
	lw.limits.ReleaseListMemory(lw.reserved)
	lw.reserved = 0
}

// release returns the stream's writer once the list is written: a list
// whose writing failed keeps it (the collector takes it).
func (lw *listWriter) release() {
	lw.buf.Reset(nil)
	listWriters.Put(lw.buf)
	lw.buf = nil
}

// renew sets the next write deadline and the request's time limit.
func (lw *listWriter) renew() {
	// Not every ResponseWriter supports deadlines; then there is none to extend.
	_ = http.NewResponseController(lw.w).SetWriteDeadline(time.Now().Add(streamSlack))
	info(lw.r.Context()).deadline.extend()
}

// opening is how the body begins.
func (lw *listWriter) opening() string {
	switch {
	case lw.q.JSONL:
		return ""
	case lw.q.Statistics:
		return `{"data":[`
	}
	return "["
}

// object writes one object.
func (lw *listWriter) object(obj records.Object) error {
	b := lw.held
	if lw.started {
		b = lw.scratch[:0]
		if lw.n%streamStep == 0 {
			lw.renew()
		}
	} else if lw.n == 0 {
		b = append(b, lw.opening()...)
	}
	if lw.n > 0 && !lw.q.JSONL {
		b = append(b, ',')
	}
	lw.n++
	if lw.q.Slim {
		b = appendSlim(b, obj)
	} else {
		b = appendObject(b, obj)
	}
	if lw.q.JSONL {
		b = append(b, '\n')
	}
	if !lw.started {
		lw.held = b
		if lw.n > holdBack {
			if lw.holdMore() {
				if lw.n%streamStep == 0 {
					// Reading on is progress: the request's time limit
					// is for a list that stopped.
					info(lw.r.Context()).deadline.extend()
				}
				return nil
			}
			lw.start()
			return lw.sendErr
		}
		return nil
	}
	lw.scratch = b
	_, err := lw.buf.Write(b)
	return lw.sent(err)
}

// sent records err, the outcome of a write to the client, and returns it.
func (lw *listWriter) sent(err error) error {
	if err != nil && lw.sendErr == nil {
		lw.sendErr = err
	}
	return err
}

// finish writes the body's closing, with the statistics when asked.
func (lw *listWriter) finish(count int) error {
	if !lw.started {
		if lw.n == 0 {
			lw.held = append(lw.held, lw.opening()...)
		}
		lw.start()
	}
	switch {
	case lw.q.JSONL:
	case lw.q.Statistics:
		page, size, pages := "null", "null", "null"
		if lw.q.Paged() {
			page, size = strconv.Itoa(lw.q.Page), strconv.Itoa(lw.q.PageSize)
			pages = strconv.Itoa((count + lw.q.PageSize - 1) / lw.q.PageSize)
		}
		fmt.Fprintf(lw.buf, `],"statistics":{"count":%d,"page":%s,"page_size":%s,"page_count":%s}}`, count, page, size, pages)
	default:
		lw.buf.WriteByte(']')
	}
	if err := lw.buf.Flush(); err != nil {
		return lw.sent(err)
	}
	lw.release()
	return nil
}

func (h resourceHandlers) list(w http.ResponseWriter, r *http.Request) {
	values, err := query.Decode(r.URL.RawQuery)
	if err != nil {
		h.s.securityEvent(r, "undecodable_query")
		h.s.writeError(w, r, err)
		return
	}
	q, err := query.Parse(h.res, values)
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	lw := newListWriter(w, r, q, h.s.limits)
	defer lw.dropReserved()
	count, err := h.s.records.List(r.Context(), principal(r.Context()), h.res, q, lw.object)
	if err == nil {
		err = lw.finish(count)
	}
	switch {
	case err == nil:
	case !lw.started:
		h.s.writeError(w, r, err)
	default:
		// The status is already out: cut the connection so the client sees a
		// broken response, never a short list that looks complete. A
		// client that went away or stalled is no failure of the service's:
		// its request line says "aborted", and that is all.
		info(r.Context()).aborted = true
		if lw.sendErr == nil && !clientGone(r) {
			h.s.log.ErrorContext(r.Context(), "list failed while streaming", "request_id", requestID(r.Context()), "error", err.Error())
		}
		panic(http.ErrAbortHandler)
	}
}

func (h resourceHandlers) bulk(w http.ResponseWriter, r *http.Request) {
	objs, err := h.s.records.BulkFrom(r.Context(), principal(r.Context()), h.res, func() ([]records.Body, error) {
		return readItems(w, r)
	})
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	// Written as encoded, through a buffer of its own, rather than as one
	// slice of the whole answer (about 400 KiB for 1,000 objects).
	bw := bufio.NewWriterSize(w, 32<<10)
	bw.WriteByte('[')
	var b []byte
	for i, o := range objs {
		b = b[:0]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendObject(b, o)
		bw.Write(b)
	}
	bw.WriteByte(']')
	bw.Flush()
}
