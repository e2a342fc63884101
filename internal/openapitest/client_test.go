package openapitest

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"accounts/internal/apiclient"
	"accounts/internal/httpapi"
	"accounts/internal/schema"
	"accounts/internal/servetest"
	"accounts/internal/store/storetest"

	openapi_types "github.com/oapi-codegen/runtime/types"
)

// The committed client is what oapi-codegen makes of the document as the
// service builds it now: a change to the declarations that is not carried
// into the client fails here (go generate ./internal/apiclient fixes it).
func TestGeneratedClientIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs oapi-codegen")
	}
	root := servetest.RepoRoot(t)
	dir := t.TempDir()
	spec := filepath.Join(dir, "openapi.json")
	if err := os.WriteFile(spec, httpapi.Reference(schema.New()).JSON, 0o600); err != nil {
		t.Fatal(err)
	}
	// go tool -n builds the tool of go.mod and names it; run in dir, it
	// writes the config's output there, not over the committed client.
	locate := exec.Command("go", "tool", "-n", "oapi-codegen")
	locate.Dir = root
	bin, err := locate.Output()
	if err != nil {
		t.Fatalf("go tool -n oapi-codegen: %v", err)
	}
	cmd := exec.Command(strings.TrimSpace(string(bin)), "-config", filepath.Join(root, "internal", "apiclient", "oapi-codegen.yaml"), spec)
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, msg)
	}
	generated, err := os.ReadFile(filepath.Join(dir, "client.gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join(root, "internal", "apiclient", "client.gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(generated, committed) {
		t.Fatal("internal/apiclient/client.gen.go is not what oapi-codegen makes of the document: run go generate ./internal/apiclient and commit the result")
	}
}

// reference is the wire form of a reference, as the generated client
// declares it inline.
type reference = struct {
	Id openapi_types.UUID `json:"id"`
}

// The generated client runs the README's walkthrough and the rest of a
// protected identity's life: an organization, a tenant, the identity; get
// it, PATCH it, find it in a filtered list, delete it. On SQLite, and on
// PostgreSQL when ACCOUNTS_TEST_POSTGRES names a server.
func TestGeneratedClientWalkthrough(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { clientWalkthrough(t, startServer(t)) })
	t.Run("postgres", func(t *testing.T) {
		clientWalkthrough(t, startOn(t, servetest.NewDeployment(t, storetest.PostgresURL(t))))
	})
}

func clientWalkthrough(t *testing.T, srv live) {
	ctx := context.Background()
	c, err := apiclient.NewClientWithResponses(srv.base, apiclient.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		for k, v := range srv.headers {
			r.Header.Set(k, v)
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	str := func(s string) *string { return &s }

	org, err := c.CreateOrganizationWithResponse(ctx, apiclient.OrganizationRequest{Name: "Acme Fastigheter AB"})
	if err != nil || org.StatusCode() != http.StatusCreated || org.JSON201 == nil {
		t.Fatalf("create organization: %v, status %d", err, status(org))
	}
	tenant, err := c.CreateTenantWithResponse(ctx, apiclient.TenantRequest{
		FirstName: str("Test"), LastName: str("Testsson"), Organization: &reference{Id: *org.JSON201.Id},
	})
	if err != nil || tenant.StatusCode() != http.StatusCreated || tenant.JSON201 == nil {
		t.Fatalf("create tenant: %v, status %d", err, status(tenant))
	}
	ssn, canonical := testSSN(t)
	created, err := c.CreateProtectedidentityWithResponse(ctx, apiclient.ProtectedidentityRequest{
		Tenant: &reference{Id: *tenant.JSON201.Id}, FirstName: str("Tolvan"), LastName: str("Tolvansson"),
		Ssn: &ssn, Email: (*openapi_types.Email)(str("tolvan@example.se")),
	})
	if err != nil || created.StatusCode() != http.StatusCreated || created.JSON201 == nil {
		t.Fatalf("create protected identity: %v, status %d", err, status(created))
	}
	pk := *created.JSON201.Id

	got, err := c.GetProtectedidentityWithResponse(ctx, pk.String())
	if err != nil || got.StatusCode() != http.StatusOK || got.JSON200 == nil {
		t.Fatalf("get: %v, status %d", err, status(got))
	}
	if got.JSON200.Ssn == nil || *got.JSON200.Ssn != canonical || got.JSON200.Tenant == nil || got.JSON200.Tenant.Id != *tenant.JSON201.Id {
		t.Errorf("get: the identity read back lacks its 12-digit ssn or its tenant")
	}

	patched, err := c.UpdateProtectedidentityWithResponse(ctx, pk.String(), apiclient.PatchedProtectedidentityRequest{
		PhoneNumber: str("+46701740605"), CustomId: str("SKY-1001"),
	})
	if err != nil || patched.StatusCode() != http.StatusOK || patched.JSON200 == nil {
		t.Fatalf("patch: %v, status %d", err, status(patched))
	}
	if patched.JSON200.CustomId == nil || *patched.JSON200.CustomId != "SKY-1001" || patched.JSON200.FirstName == nil {
		t.Errorf("patch: the answer is not the whole object after the update")
	}

	listed, err := c.ListProtectedidentityWithResponse(ctx, &apiclient.ListProtectedidentityParams{
		LastNameIstartswith: str("tolv"), Tenant: tenant.JSON201.Id,
	})
	if err != nil || listed.StatusCode() != http.StatusOK || listed.JSON200 == nil {
		t.Fatalf("list: %v, status %d", err, status(listed))
	}
	arrays, err := listed.JSON200.AsListProtectedidentity200JSONResponseBody0()
	if err != nil {
		t.Fatalf("list: the body is not an array: %v", err)
	}
	objects, err := arrays.AsListProtectedidentity200JSONResponseBody00()
	if err != nil || len(objects) != 1 || *objects[0].Id != pk {
		t.Fatalf("list: want exactly the identity, got %d objects (%v)", len(objects), err)
	}
	other, err := c.ListProtectedidentityWithResponse(ctx, &apiclient.ListProtectedidentityParams{LastNameIstartswith: str("andersson")})
	if err != nil || other.StatusCode() != http.StatusOK || string(bytes.TrimSpace(other.Body)) != "[]" {
		t.Errorf("list with a filter nothing matches: %v, status %d", err, status(other))
	}

	deleted, err := c.DeleteProtectedidentityWithResponse(ctx, pk.String())
	if err != nil || deleted.StatusCode() != http.StatusNoContent {
		t.Fatalf("delete: %v, status %d", err, status(deleted))
	}
	gone, err := c.GetProtectedidentityWithResponse(ctx, pk.String())
	if err != nil || gone.StatusCode() != http.StatusNotFound || gone.JSON404 == nil {
		t.Errorf("get after delete: %v, status %d, want 404 with its body", err, status(gone))
	}
}

// status is a response's status code, 0 for none.
func status(r interface{ StatusCode() int }) int {
	if r == nil {
		return 0
	}
	return r.StatusCode()
}
