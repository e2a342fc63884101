package cli

import (
	"bytes"
	"testing"

	"accounts/internal/config"
	"accounts/internal/httpapi"
	"accounts/internal/schema"
)

// accounts openapi prints the document serve answers on /openapi.json
// (with --yaml, on /openapi.yaml), byte for byte, and opens nothing: a
// database setting every other command refuses is no obstacle.
func TestCLIOpenAPI(t *testing.T) {
	c := newCLIEnv(t)
	c.vars[config.EnvDatabase] = "mysql://u@db.invalid/accounts"
	ref := httpapi.Reference(schema.New())
	for _, tc := range []struct {
		args []string
		want []byte
	}{
		{[]string{"openapi"}, ref.JSON},
		{[]string{"openapi", "--yaml"}, ref.YAML},
	} {
		out, _, err := c.run(tc.args...)
		if err != nil {
			t.Errorf("accounts %v: %v", tc.args, err)
			continue
		}
		if !bytes.Equal([]byte(out), tc.want) {
			t.Errorf("accounts %v does not print the served document", tc.args)
		}
	}
}
