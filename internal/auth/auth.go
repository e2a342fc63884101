// Package auth authenticates API requests by the seven X-PIGELLO-* headers
// and issues the clients that carry them.
//
// Secrets are 32 random bytes, shown once at issue and stored only as a
// SHA-256 digest; digests are compared in constant time. A client read from
// the database authenticates its requests for ClientCacheTTL without being
// read again: that is how long a revocation takes, at most, to reach every
// process.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"accounts/internal/apperr"
	"accounts/internal/store"

	"github.com/google/uuid"
)

// The seven headers of Pigello's authentication, all required together.
const (
	HeaderCustomerID       = "X-PIGELLO-CUSTOMER-ID"
	HeaderApplicationID    = "X-PIGELLO-APPLICATION-ID"
	HeaderServiceID        = "X-PIGELLO-SERVICE-ID"
	HeaderServiceVersionID = "X-PIGELLO-SERVICE-VERSION-ID"
	HeaderClientCT         = "X-PIGELLO-CLIENT-CT"
	HeaderClientEntity     = "X-PIGELLO-CLIENT-ENTITY"
	HeaderClientSecret     = "X-PIGELLO-CLIENT-SECRET"
)

// ClientCT is the client content type the service issues.
const ClientCT = "accounts.integrationuseragent"

// Scope is what a client may do.
type Scope string

// The two scopes: read-only, and read and write.
const (
	Read      Scope = "read"
	ReadWrite Scope = "read_write"
)

// ParseScope validates a scope name.
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case Read, ReadWrite:
		return Scope(s), nil
	}
	return "", errors.New("scope must be read or read_write")
}

// Principal is an authenticated client.
type Principal struct {
	CustomerID string
	ClientID   string
	Scope      Scope
}

// CanWrite reports whether the principal may change data.
func (p Principal) CanWrite() bool { return p.Scope == ReadWrite }

// maxSecretLen bounds the secret header so a huge value costs nothing to reject.
const maxSecretLen = 256

// Clients is where the authenticator finds clients by entity id.
type Clients interface {
	Client(ctx context.Context, id string) (store.Client, error)
}

// Authenticator checks request headers against the registered clients.
type Authenticator struct {
	clients Clients
	// dummy is compared against when no client is found, so that the work
	// done does not depend on whether the entity id exists.
	dummy []byte
	// recent holds the clients that authenticated in the last
	// ClientCacheTTL, so that a client's every request does not read the
	// database.
	recent *clientCache
}

// NewAuthenticator returns an Authenticator over clients.
func NewAuthenticator(clients Clients) *Authenticator {
	return &Authenticator{clients: clients, dummy: Digest(newSecret()), recent: newClientCache(clientCacheSize)}
}

// Authenticate returns the principal for h, an Unauthenticated error for any
// credential problem (always the same, whatever was wrong), or an
// Unavailable error when the client store can't be read.
func (a *Authenticator) Authenticate(ctx context.Context, h http.Header) (Principal, error) {
	denied := apperr.New(apperr.Unauthenticated, nil)
	var v [7]string
	for i, name := range []string{HeaderCustomerID, HeaderApplicationID, HeaderServiceID,
		HeaderServiceVersionID, HeaderClientCT, HeaderClientEntity, HeaderClientSecret} {
		vals := h.Values(name)
		if len(vals) != 1 || vals[0] == "" {
			return Principal{}, denied
		}
		v[i] = vals[0]
	}
	// UUIDs are compared without case (RFC 9562: their hexadecimal digits
	// are read either way, as Pigello reads these headers); ids are stored
	// in lower case.
	for _, i := range []int{0, 1, 2, 3, 5} {
		if !isUUID(v[i]) {
			return Principal{}, denied
		}
		v[i] = strings.ToLower(v[i])
	}
	customer, app, service, version, ct, entity, secret := v[0], v[1], v[2], v[3], v[4], v[5], v[6]
	if len(secret) > maxSecretLen {
		return Principal{}, denied
	}
	digest := Digest(secret)
	key := cacheKey{entity: entity, digest: [sha256.Size]byte(digest)}
	// now is before the database is read, so a cached client is never
	// older than its age says.
	now := time.Now()
	c, cached := a.recent.get(key, now)
	if !cached {
		var err error
		c, err = a.clients.Client(ctx, entity)
		if errors.Is(err, store.ErrNotFound) {
			subtle.ConstantTimeCompare(digest, a.dummy)
			return Principal{}, denied
		}
		if err != nil {
			return Principal{}, apperr.New(apperr.Unavailable, err)
		}
	}
	// The same checks whether the client came from the database or the
	// cache: a cached client is only ever what the database said.
	secretOK := subtle.ConstantTimeCompare(digest, c.SecretDigest) == 1
	if !secretOK || c.RevokedAt != nil || c.CustomerID != customer || c.ApplicationID != app ||
		c.ServiceID != service || c.ServiceVersionID != version || c.ClientCT != ct {
		return Principal{}, denied
	}
	if !cached {
		a.recent.put(key, c, now)
	}
	return Principal{CustomerID: c.CustomerID, ClientID: c.ID, Scope: Scope(c.Scope)}, nil
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// Digest is how a secret is stored.
func Digest(secret string) []byte {
	d := sha256.Sum256([]byte(secret))
	return d[:]
}

func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Issue creates a new client for a customer and returns it with its secret,
// which exists nowhere else: only its digest is in the returned client.
func Issue(customerID string, scope Scope, now time.Time) (store.Client, string) {
	secret := newSecret()
	return store.Client{
		ID:               uuid.NewString(),
		CustomerID:       customerID,
		ApplicationID:    uuid.NewString(),
		ServiceID:        uuid.NewString(),
		ServiceVersionID: uuid.NewString(),
		ClientCT:         ClientCT,
		SecretDigest:     Digest(secret),
		Scope:            string(scope),
		CreatedAt:        now.UTC().Truncate(time.Microsecond),
	}, secret
}

// Headers returns the header values a client sends; the secret header is
// included only when secret is not empty.
func Headers(c store.Client, secret string) map[string]string {
	h := map[string]string{
		HeaderCustomerID:       c.CustomerID,
		HeaderApplicationID:    c.ApplicationID,
		HeaderServiceID:        c.ServiceID,
		HeaderServiceVersionID: c.ServiceVersionID,
		HeaderClientCT:         c.ClientCT,
		HeaderClientEntity:     c.ID,
	}
	if secret != "" {
		h[HeaderClientSecret] = secret
	}
	return h
}
