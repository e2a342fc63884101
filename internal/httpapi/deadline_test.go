package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"accounts/internal/auth"
	"accounts/internal/limit"
	"accounts/internal/store"
)

// silentClients is a database that went silent: a client is never read,
// until the reader gives up.
type silentClients struct{}

func (silentClients) Client(ctx context.Context, _ string) (store.Client, error) {
	<-ctx.Done()
	return store.Client{}, ctx.Err()
}

// A request's time limit covers its authentication, which reads the client
// from the database when it was not read in the last auth.ClientCacheTTL:
// a database gone silent holds the request until its limit, then answers
// the limit's 503, never until the database comes back.
func TestAuthenticationWithinTimeLimit(t *testing.T) {
	s, _ := mwServer()
	s.auth = auth.NewAuthenticator(silentClients{})
	s.limits = limit.New(limit.Config{})
	s.events = newEventFolder()
	s.requestTimeout = 200 * time.Millisecond
	h := s.observe(s.guard(reader, func(w http.ResponseWriter, r *http.Request) {
		t.Error("the handler ran for a client never read")
	}))
	req := httptest.NewRequest("GET", "/accounts/users/customer/tenant/list/", nil)
	for _, name := range []string{auth.HeaderCustomerID, auth.HeaderApplicationID, auth.HeaderServiceID,
		auth.HeaderServiceVersionID, auth.HeaderClientEntity} {
		req.Header.Set(name, mwUUID)
	}
	req.Header.Set(auth.HeaderClientCT, "ct")
	req.Header.Set(auth.HeaderClientSecret, "secret")
	answered := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		answered <- rec
	}()
	select {
	case rec := <-answered:
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Errorf("a client the database never gave: %d (Retry-After %q), want 503 with Retry-After",
				rec.Code, rec.Header().Get("Retry-After"))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a request whose client the silent database never gave is unanswered 5 s in, past its 200 ms limit")
	}
}
