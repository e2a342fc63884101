package apitest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"accounts/internal/httpapi"
	"accounts/internal/schema"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Every exchange of the suite's client (env.send and the helpers built on
// it) goes through a transport that holds it to the OpenAPI document with
// kin-openapi: the response must be one the document describes, for its
// status; and a request the document refuses must not succeed. A request
// that matches no operation (an unknown path, PUT, a path without its
// slash) must get one of the answers the contract gives those.

// reference is the document as kin-openapi reads it, with its router.
var reference = sync.OnceValues(func() (routers.Router, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(httpapi.Reference(schema.New()).JSON)
	if err != nil {
		return nil, err
	}
	// The servers name the README's address; the tests' servers listen
	// on ports of their own.
	doc.Servers = nil
	return legacy.NewRouter(doc)
})

// validated counts the exchanges checked, by operation ("METHOD path")
// and status class, for TestMain's coverage check.
var (
	validatedMu sync.Mutex
	validated   = map[string]map[int]int{}
)

func init() {
	// JSON Lines: the lines, as the array the document's schema describes.
	openapi3filter.RegisterBodyDecoder("application/jsonl", func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		var out []any
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 1<<20), 1<<26)
		for sc.Scan() {
			var v any
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				return nil, errors.New("a line is not JSON")
			}
			out = append(out, v)
		}
		return out, sc.Err()
	})
	for _, mt := range []string{"text/html", "text/javascript"} {
		openapi3filter.RegisterBodyDecoder(mt, func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
			data, err := io.ReadAll(body)
			return string(data), err
		})
	}
}

// unroutedStatuses are the answers to a request the document has no
// operation for: a redirect to the slashed path, 401 before 405 on a
// known path, 403 to a read client's write before 405, 404, 405, and the
// limits.
var unroutedStatuses = []int{http.StatusPermanentRedirect, http.StatusUnauthorized, http.StatusForbidden,
	http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusTooManyRequests, http.StatusServiceUnavailable}

// checkedTransport validates each exchange against the document,
// reporting to t.
type checkedTransport struct {
	t    testing.TB
	next http.RoundTripper
}

func (c checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		// A body cut short is the caller's to meet: the bytes that came,
		// then the same error.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(respBody), failingReader{err}))
		return resp, nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if msg := checkExchange(req, reqBody, resp, respBody); msg != "" {
		c.t.Errorf("OpenAPI: %s", msg)
	}
	return resp, nil
}

// failingReader fails every read with its error.
type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

// checkedClient is an HTTP client whose exchanges are validated, for the
// tests that send requests of their own making.
func checkedClient(t testing.TB) *http.Client {
	return &http.Client{Transport: checkedTransport{t: t, next: http.DefaultTransport}}
}

// checkExchange returns what is wrong with one exchange, or "". What it
// says names the operation, status and the schema location only: never a
// value, which may be personal.
func checkExchange(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) string {
	router, err := reference()
	if err != nil {
		return "the document does not load: " + err.Error()
	}
	probe := req.Clone(context.Background())
	probe.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, pathParams, err := router.FindRoute(probe)
	if err != nil {
		if req.Method != http.MethodHead && !slices.Contains(unroutedStatuses, resp.StatusCode) {
			return fmt.Sprintf("%s on a path the document lacks answered %d", req.Method, resp.StatusCode)
		}
		return ""
	}
	op := route.Method + " " + route.Path
	in := &openapi3filter.RequestValidationInput{
		Request: probe, PathParams: pathParams, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: headersPresent, MultiError: false},
	}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	if reqErr != nil && resp.StatusCode < 300 {
		return fmt.Sprintf("%s: the document refuses the request (%s), but the server answered %d", op, where(reqErr), resp.StatusCode)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(respBody)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Sprintf("%s: the %d response does not match the document (%s)", op, resp.StatusCode, where(err))
	}
	validatedMu.Lock()
	if validated[op] == nil {
		validated[op] = map[int]int{}
	}
	validated[op][resp.StatusCode]++
	validatedMu.Unlock()
	return ""
}

// headersPresent is the security check of the document: every one of the
// seven headers is there (whether they are right is the server's to say).
func headersPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.RequestValidationInput.Request.Header.Get(in.SecurityScheme.Name) == "" {
		return errors.New("header missing")
	}
	return nil
}

// where says where a validation error is, without the value: the
// parameter, or the JSON pointer and keyword in a body.
func where(err error) string {
	var parts []string
	var re *openapi3filter.RequestError
	if errors.As(err, &re) {
		switch {
		case re.Parameter != nil:
			parts = append(parts, "parameter "+re.Parameter.Name)
		case re.RequestBody != nil:
			parts = append(parts, "request body")
		}
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		parts = append(parts, "at /"+strings.Join(se.JSONPointer(), "/")+" keyword "+se.SchemaField)
	}
	var sec *openapi3filter.SecurityRequirementsError
	if errors.As(err, &sec) {
		parts = append(parts, "credentials")
	}
	var resp *openapi3filter.ResponseError
	if errors.As(err, &resp) && len(parts) == 0 {
		parts = append(parts, resp.Reason)
	}
	if len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%T", err))
	}
	return strings.Join(parts, ", ")
}

// checkCoverage is TestMain's check after a run of the whole suite: every
// operation of the document answered with success at least once, so the
// validation above saw every success response of the document in use.
func checkCoverage() int {
	validatedMu.Lock()
	defer validatedMu.Unlock()
	var missing []string
	total := 0
	for _, op := range httpapi.Reference(schema.New()).Operations() {
		ok := false
		for status, n := range validated[op] {
			total += n
			ok = ok || status < 300
		}
		if !ok {
			missing = append(missing, op)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "OpenAPI coverage check: %d operations never answered with success in the suite: %s\n",
			len(missing), strings.Join(missing, ", "))
		return 1
	}
	fmt.Printf("apitest: %d exchanges validated against the OpenAPI document\n", total)
	return 0
}

// The reference endpoints answer the document and the page, without
// credentials.
func TestReferenceEndpoints(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ path, contentType string }{
		{"/openapi.json", "application/json"},
		{"/openapi.yaml", "application/yaml"},
		{"/docs/", "text/html"},
		{"/docs/redoc.standalone.js", "text/javascript"},
		{"/healthz", "application/json"},
		{"/readyz", "application/json"},
		{"/metrics", "text/plain"},
	} {
		r := e.sendTo(e.server.URL, "GET", c.path, nil)
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), c.contentType) || len(r.raw) == 0 {
			t.Errorf("GET %s: status %d, Content-Type %q, %d bytes", c.path, r.status, r.header.Get("Content-Type"), len(r.raw))
		}
	}
	if r := e.sendTo(e.server.URL, "GET", "/docs", nil); r.status != http.StatusPermanentRedirect || r.header.Get("Location") != "/docs/" {
		t.Errorf("GET /docs: status %d, Location %q; want 308 to /docs/", r.status, r.header.Get("Location"))
	}
}

// wholeSuite reports whether this run runs every test: no -run or -skip
// selection, not -short.
func wholeSuite() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return !testing.Short()
}
