package cli

import (
	"context"
	"flag"

	"accounts/internal/httpapi"
	"accounts/internal/schema"
)

// openapiDocument prints the OpenAPI document that serve answers on
// /openapi.json (or, with --yaml, /openapi.yaml). It opens nothing, so a
// client can be generated without a database or a key.
func openapiDocument(fs *flag.FlagSet, io IO) runFunc {
	asYAML := fs.Bool("yaml", false, "print YAML instead of JSON")
	return func(ctx context.Context, _ []string) error {
		doc := httpapi.Reference(schema.New())
		out := doc.JSON
		if *asYAML {
			out = doc.YAML
		}
		_, err := io.Stdout.Write(out)
		return err
	}
}
