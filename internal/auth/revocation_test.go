package auth_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"accounts/internal/auth"
)

// headersOf is the request a client holding these values sends.
func headersOf(values [7]string) http.Header {
	h := http.Header{}
	for i, name := range pigelloHeaders {
		h.Set(name, values[i])
	}
	return h
}

// After a client authenticated, a request with its id and a wrong secret is
// refused: what the cache holds never answers for another secret.
func TestWrongSecretAfterSuccess(t *testing.T) {
	db, issued := issueClients(t)
	a := auth.NewAuthenticator(db)
	c := issued[0]
	if _, err := a.Authenticate(context.Background(), headersOf(c.values)); err != nil {
		t.Fatalf("the right secret: %v", err)
	}
	wrong := c.values
	wrong[6] = issued[1].values[6] // another live client's secret
	for range 3 {
		if p, err := a.Authenticate(context.Background(), headersOf(wrong)); err == nil {
			t.Fatalf("a wrong secret authenticated as %s after a success", p.ClientID)
		}
	}
	if _, err := a.Authenticate(context.Background(), headersOf(c.values)); err != nil {
		t.Errorf("the right secret after wrong ones: %v", err)
	}
}

// A client revoked in the database while an authenticator has it cached is
// refused from ClientCacheTTL after the revocation on.
func TestRevocationWithinTTL(t *testing.T) {
	db, issued := issueClients(t)
	a := auth.NewAuthenticator(db)
	c := issued[0]
	h := headersOf(c.values)
	if _, err := a.Authenticate(context.Background(), h); err != nil {
		t.Fatalf("before the revocation: %v", err)
	}
	if err := db.RevokeClient(context.Background(), c.client.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		asked := time.Since(revoked)
		if _, err := a.Authenticate(context.Background(), h); err != nil {
			break
		}
		if asked >= auth.ClientCacheTTL {
			t.Fatalf("a request made %v after the revocation authenticated; the bound is %v", asked, auth.ClientCacheTTL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
