// Package httpapi serves the Accounts API over HTTP: the route table,
// middleware, JSON in and out, and the one mapping from errors to statuses.
// Handlers are thin: decode, call the records service, encode.
package httpapi

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"accounts/internal/apidocs"
	"accounts/internal/apperr"
	"accounts/internal/auth"
	"accounts/internal/limit"
	"accounts/internal/openapi"
	"accounts/internal/query"
	"accounts/internal/records"
	"accounts/internal/schema"

	"github.com/prometheus/client_golang/prometheus"
)

// Options are what the server is built from.
type Options struct {
	Catalog *schema.Catalog
	Records *records.Service
	Auth    *auth.Authenticator
	// Ready reports whether the database answers and its schema is current.
	Ready  func(context.Context) error
	Logger *slog.Logger
	// Registry receives the HTTP metrics and is served on /metrics.
	Registry *prometheus.Registry
	// Limits admit requests (nil: no limits).
	Limits *limit.Limits
	// RequestTimeout bounds a request's work before its response starts,
	// and each stretch of a streaming list (0: no bound).
	RequestTimeout time.Duration
	// OmitMetrics leaves /metrics out of the route table (it then answers
	// 404 like any unknown path): the caller serves the Registry on a
	// listener of its own.
	OmitMetrics bool
}

// metricsHandler serves the Registry, or is nil when OmitMetrics.
func (o Options) metricsHandler() http.Handler {
	if o.OmitMetrics {
		return nil
	}
	return MetricsHandler(o.Registry)
}

// Server is the HTTP handler of the service.
type Server struct {
	catalog *schema.Catalog
	records *records.Service
	auth    *auth.Authenticator
	ready   func(context.Context) error
	log     *slog.Logger
	metrics *metrics
	events  *eventFolder
	limits  *limit.Limits
	// requestTimeout: see Options.RequestTimeout.
	requestTimeout time.Duration
	mux            *http.ServeMux
	// patterns are the registered route patterns, for the trailing-slash redirect.
	patterns map[string]bool
	// routeNames are the route table's rows as "METHOD pattern".
	routeNames []string
	handler    http.Handler
}

// New builds the server and its route table.
func New(o Options) *Server {
	s := &Server{
		catalog:        o.Catalog,
		records:        o.Records,
		auth:           o.Auth,
		ready:          o.Ready,
		log:            o.Logger,
		metrics:        newMetrics(o.Registry, o.Limits),
		events:         newEventFolder(),
		limits:         o.Limits,
		requestTimeout: o.RequestTimeout,
		mux:            http.NewServeMux(),
		patterns:       map[string]bool{},
	}
	s.routes(o.metricsHandler())
	s.handler = s.observe(s.recoverPanics(http.HandlerFunc(s.dispatch)))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// access is who may call a route.
type access int

const (
	public access = iota // no credentials (health, metrics)
	reader               // any authenticated client
	writer               // a read_write client; a read client gets 403
)

// route is one row of the route table.
type route struct {
	method  string
	pattern string
	access  access
	handler http.HandlerFunc
}

// routes registers every route in one table. For each path it also
// registers a method-less pattern that answers 405 with Allow, and the
// catch-all answers 308 to the slashed path or 404.
func (s *Server) routes(metricsHandler http.Handler) {
	// Built at the first request for it: a server that never serves the
	// document (most of the tests' servers) does not pay for it.
	reference := sync.OnceValue(func() *openapi.Document { return Reference(s.catalog) })
	table := []route{
		{"GET", openapi.PathHealthz, public, s.healthz},
		{"GET", openapi.PathReadyz, public, s.readyz},
		{"GET", openapi.PathJSON, public, serveBytes("application/json", func() []byte { return reference().JSON })},
		{"GET", openapi.PathYAML, public, serveBytes("application/yaml", func() []byte { return reference().YAML })},
		{"GET", openapi.PathDocs, public, apidocs.Page},
		{"GET", openapi.PathDocsScript, public, apidocs.Script},
	}
	if metricsHandler != nil {
		table = append(table, route{"GET", openapi.PathMetrics, public, metricsHandler.ServeHTTP})
	}
	for _, res := range s.catalog.Resources {
		h := resourceHandlers{s: s, res: res}
		table = append(table,
			route{"GET", res.Path, reader, h.list},
			route{"POST", res.Path, writer, s.withoutQuery(h.create)},
			route{"GET", res.Path + "list/", reader, h.list},
			route{"POST", res.Path + "list/", writer, s.withoutQuery(h.bulk)},
			route{"GET", res.Path + "{pk}/", reader, s.withoutQuery(h.get)},
			route{"PATCH", res.Path + "{pk}/", writer, s.withoutQuery(h.update)},
			route{"DELETE", res.Path + "{pk}/", writer, s.withoutQuery(h.delete)},
		)
	}
	// The mux matches paths only: with method patterns, "GET B{pk}/" and a
	// fallback "B list/" for 405 would conflict. Each path gets one handler
	// that dispatches on the method and answers 405 with Allow itself.
	byPath := map[string]map[string]http.Handler{}
	var paths []string
	for _, rt := range table {
		s.routeNames = append(s.routeNames, rt.method+" "+rt.pattern)
		if byPath[rt.pattern] == nil {
			byPath[rt.pattern] = map[string]http.Handler{}
			paths = append(paths, rt.pattern)
		}
		name := rt.method + " " + rt.pattern
		byPath[rt.pattern][rt.method] = s.named(name, s.guard(rt.access, rt.handler))
	}
	for _, p := range paths {
		methods := byPath[p]
		if get, ok := methods["GET"]; ok {
			methods["HEAD"] = get
		}
		allow := slices.Sorted(maps.Keys(methods))
		a := public
		for _, rt := range table {
			if rt.pattern == p && rt.access != public {
				a = reader
			}
		}
		refuse := methodNotAllowed(strings.Join(allow, ", "))
		notAllowed := s.named(p, s.guard(a, refuse))
		// A method that is not safe is a write: a read client is refused
		// it (403) before it learns that the path does not take it, as
		// Django REST Framework checks permissions before it dispatches.
		notAllowedWrite := notAllowed
		if a == reader {
			notAllowedWrite = s.named(p, s.guard(writer, refuse))
		}
		// A pattern ending in "/" would match everything below it: {$} ends it.
		pattern := p
		if strings.HasSuffix(p, "/") {
			pattern += "{$}"
		}
		s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h, ok := methods[r.Method]; ok {
				h.ServeHTTP(w, r)
				return
			}
			if safeMethods[r.Method] {
				notAllowed.ServeHTTP(w, r)
				return
			}
			notAllowedWrite.ServeHTTP(w, r)
		}))
		s.patterns[pattern] = true
	}
	s.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { notFound(w) }))
}

// safeMethods are the methods that only read, as Django REST Framework
// counts them (its SAFE_METHODS): any other is a write.
var safeMethods = map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true}

// Routes lists the route table's rows as "METHOD pattern" (HEAD, which
// every GET route answers too, is not a row).
func (s *Server) Routes() []string { return slices.Clone(s.routeNames) }

// Reference builds the OpenAPI document of the routes New serves, with the
// bodies and limits this package writes and enforces.
func Reference(c *schema.Catalog) *openapi.Document {
	return openapi.New(c, openapi.HTTP{
		ParseError:       bodyParseError,
		Unauthenticated:  bodyUnauthenticated,
		Forbidden:        bodyForbidden,
		NotFound:         bodyNotFound,
		MethodNotAllowed: methodNotAllowedBody(http.MethodPut),
		TooLarge:         bodyTooLarge,
		Unsupported:      bodyUnsupported,
		Throttled:        bodyThrottled,
		Overloaded:       bodyOverloaded,
		Internal:         internalErrorBody("7c3e9a51-2f4b-4d8e-a6c1-0b9d8e7f6a52"),
		BodyLimit:        maxBody,
		BulkBodyLimit:    maxBulkBody,
		BulkItems:        records.MaxBulkItems,
	})
}

// serveBytes answers a fixed body.
func serveBytes(contentType string, body func() []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Write(body())
	}
}

func methodNotAllowedBody(method string) map[string]string {
	return map[string]string{"detail": `Method "` + method + `" not allowed.`}
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, methodNotAllowedBody(r.Method))
	}
}

// withoutQuery refuses a query parameter on a route that takes none: it
// would be silently ignored (a filter on a single object, a secret that
// must never travel in a URL), so each one is a 400 on its name. A query
// with no parameter ("?", "?&": empty pairs carry none, as on lists) is
// no query.
func (s *Server) withoutQuery(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "" {
			next(w, r)
			return
		}
		values, err := query.Decode(r.URL.RawQuery)
		if err != nil {
			s.securityEvent(r, "undecodable_query")
			s.writeError(w, r, err)
			return
		}
		if len(values) == 0 {
			next(w, r)
			return
		}
		errs := apperr.FieldErrors{}
		for name := range values {
			errs.Add(name, "Unknown query parameter.")
		}
		s.writeError(w, r, errs.Err())
	}
}

// dispatch answers 404 to a path that is not in its one plain form, 308 to
// the same path with a trailing slash when the request's path lacks one and
// the slashed path has a route; everything else goes to the mux.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if !plainPath(r.URL) {
		notFound(w)
		return
	}
	if !strings.HasSuffix(r.URL.Path, "/") {
		probe := r.Clone(r.Context())
		probe.URL.Path += "/"
		if _, pattern := s.mux.Handler(probe); s.patterns[pattern] {
			// No body (Go's would be HTML) and no cache: the query, which
			// the Location repeats, may hold a person's values.
			w.Header().Set("Location", probe.URL.RequestURI())
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusPermanentRedirect)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// plainPath reports whether u's path is in its one plain form: absolute,
// with no empty, "." or ".." segment (decoded: "%2e%2e" is ".."), and no
// slash escaped as "%2F" (a segment that holds a slash is no segment of
// the API's). Any other spelling is not found, as the API's paths are
// matched exactly (the mux would redirect it to its clean form instead: a
// repair, and a URL the service builds from what it was sent). A CONNECT's
// authority and the target "*" are no path either. Other escapes decode
// to the same path (RFC 3986 6.2.2.2) and are served as it.
func plainPath(u *url.URL) bool {
	p := u.Path
	if !strings.HasPrefix(p, "/") || strings.Contains(strings.ToUpper(u.RawPath), "%2F") {
		return false
	}
	if p == "/" {
		return true
	}
	// path.Clean drops a trailing slash; without it, a clean path is
	// returned as it is, with no allocation on every request.
	p = strings.TrimSuffix(p, "/")
	return !strings.HasSuffix(p, "/") && path.Clean(p) == p
}

// notFound answers the contract's 404.
func notFound(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusNotFound, bodyNotFound)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyTimeout bounds a readiness check: a load balancer asks often and
// waits little, and a database that has not answered by then (a network
// that went silent holds a query for minutes) is not ready.
const readyTimeout = 2 * time.Second

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.log.WarnContext(r.Context(), "not ready", "request_id", requestID(r.Context()), "error", err.Error())
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// resourceHandlers are the handlers of one resource.
type resourceHandlers struct {
	s   *Server
	res *schema.Resource
}

// pk returns the path's object id, or "" when it is not a UUID (which then
// answers 404, like an unknown one).
func pk(r *http.Request) string {
	if raw := r.PathValue("pk"); isUUID(raw) {
		return strings.ToLower(raw)
	}
	return ""
}

func (h resourceHandlers) create(w http.ResponseWriter, r *http.Request) {
	body, err := readObject(w, r)
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	obj, err := h.s.records.Create(r.Context(), principal(r.Context()), h.res, body)
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	writeObject(w, http.StatusCreated, obj)
}

func (h resourceHandlers) get(w http.ResponseWriter, r *http.Request) {
	id := pk(r)
	if id == "" {
		writeJSON(w, http.StatusNotFound, bodyNotFound)
		return
	}
	obj, err := h.s.records.Get(r.Context(), principal(r.Context()), h.res, id)
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	writeObject(w, http.StatusOK, obj)
}

func (h resourceHandlers) update(w http.ResponseWriter, r *http.Request) {
	id := pk(r)
	if id == "" {
		writeJSON(w, http.StatusNotFound, bodyNotFound)
		return
	}
	body, err := readObject(w, r)
	if err != nil {
		// An update of no object is a 404 whatever its body, as in Django
		// REST Framework (and as a malformed id is, above). A lookup that
		// fails leaves the body's own answer.
		if missing := h.s.records.Lookup(r.Context(), principal(r.Context()), h.res, id); apperr.KindOf(missing) == apperr.NotFound {
			closeUnread(w, r, apperr.KindOf(err))
			err = missing
		}
		h.s.writeError(w, r, err)
		return
	}
	obj, err := h.s.records.Update(r.Context(), principal(r.Context()), h.res, id, body)
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	writeObject(w, http.StatusOK, obj)
}

func (h resourceHandlers) delete(w http.ResponseWriter, r *http.Request) {
	id := pk(r)
	if id == "" {
		writeJSON(w, http.StatusNotFound, bodyNotFound)
		return
	}
	if err := h.s.records.Delete(r.Context(), principal(r.Context()), h.res, id); err != nil {
		h.s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
