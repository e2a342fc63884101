package httpapi

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"accounts/internal/query"
	"accounts/internal/records"
)

// listWriter writes a list body in the form the query asks for: a JSON
// array, the statistics envelope, or JSON Lines. It writes each object as it
// comes, so an unpaged list streams without holding the result in memory.
type listWriter struct {
	w       http.ResponseWriter
	buf     *bufio.Writer
	q       query.Query
	started bool
	n       int
	scratch []byte
}

func newListWriter(w http.ResponseWriter, q query.Query) *listWriter {
	return &listWriter{w: w, q: q}
}

// start writes the status, headers and the body's opening.
func (lw *listWriter) start() {
	if lw.started {
		return
	}
	lw.started = true
	if lw.q.JSONL {
		lw.w.Header().Set("Content-Type", "application/jsonl")
	} else {
		lw.w.Header().Set("Content-Type", "application/json")
	}
	lw.w.WriteHeader(http.StatusOK)
	lw.buf = bufio.NewWriterSize(lw.w, 32<<10)
	switch {
	case lw.q.JSONL:
	case lw.q.Statistics:
		lw.buf.WriteString(`{"data":[`)
	default:
		lw.buf.WriteByte('[')
	}
}

// streamSlack is how long a streaming list may take to write its next
// thousand objects: the server's write timeout bounds ordinary responses,
// and a long stream extends its own deadline as it makes progress.
const streamSlack = 30 * time.Second

// object writes one object.
func (lw *listWriter) object(obj records.Object) error {
	lw.start()
	if lw.n%1000 == 999 {
		// Not every ResponseWriter supports deadlines; then there is none to extend.
		_ = http.NewResponseController(lw.w).SetWriteDeadline(time.Now().Add(streamSlack))
	}
	if lw.n > 0 && !lw.q.JSONL {
		lw.buf.WriteByte(',')
	}
	lw.n++
	if lw.q.Slim {
		lw.scratch = appendSlim(lw.scratch[:0], obj)
	} else {
		lw.scratch = appendObject(lw.scratch[:0], obj)
	}
	if lw.q.JSONL {
		lw.scratch = append(lw.scratch, '\n')
	}
	_, err := lw.buf.Write(lw.scratch)
	return err
}

// finish writes the body's closing, with the statistics when asked.
func (lw *listWriter) finish(count int) error {
	lw.start()
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
	return lw.buf.Flush()
}

func (h resourceHandlers) list(w http.ResponseWriter, r *http.Request) {
	q, err := query.Parse(h.res, r.URL.Query())
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	p := principal(r.Context())
	if q.Paged() {
		// A page is at most 1,000 objects: collect it, so that a failure
		// half-way is still a clean error response.
		var page []records.Object
		count, err := h.s.records.List(r.Context(), p, h.res, q, func(o records.Object) error {
			page = append(page, o)
			return nil
		})
		if err != nil {
			h.s.writeError(w, r, err)
			return
		}
		lw := newListWriter(w, q)
		for _, o := range page {
			lw.object(o)
		}
		lw.finish(count)
		return
	}
	lw := newListWriter(w, q)
	count, err := h.s.records.List(r.Context(), p, h.res, q, lw.object)
	if err == nil {
		lw.finish(count)
		return
	}
	if !lw.started {
		h.s.writeError(w, r, err)
		return
	}
	// The status is already out: cut the connection so the client sees a
	// broken response, never a short list that looks complete.
	h.s.log.ErrorContext(r.Context(), "list failed while streaming", "request_id", requestID(r.Context()), "error", err.Error())
	panic(http.ErrAbortHandler)
}

func (h resourceHandlers) bulk(w http.ResponseWriter, r *http.Request) {
	items, err := h.s.readItems(w, r)
	if err != nil {
		return
	}
	objs, err := h.s.records.Bulk(r.Context(), principal(r.Context()), h.res, items)
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	b := []byte{'['}
	for i, o := range objs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendObject(b, o)
	}
	w.Write(append(b, ']'))
}
