package transport

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/atgraph/atg/operations"
)

// OpenAPIDocument is the OpenAPI 3.1 description of the v1 API as kept in
// the repository. A test checks it describes exactly the registered routes.
// The server publishes it on /openapi.json with one SubmitRequest variant
// per registered operation type (see Type.ParamsSchema).
//
//go:embed openapi.json
var OpenAPIDocument []byte

// buildOpenAPI returns OpenAPIDocument with the SubmitRequest schema made
// of one variant per type in reg.
func buildOpenAPI(reg *operations.Registry) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(OpenAPIDocument, &doc); err != nil {
		return nil, fmt.Errorf("transport: openapi.json: %w", err)
	}
	var variants []any
	for _, t := range reg.Types() {
		var params any = map[string]any{"type": "object"}
		if len(t.ParamsSchema) > 0 {
			if err := json.Unmarshal(t.ParamsSchema, &params); err != nil {
				return nil, fmt.Errorf("transport: ParamsSchema of operation type %q: %w", t.Name, err)
			}
		}
		variants = append(variants, map[string]any{
			"type": "object", "required": []string{"type"}, "additionalProperties": false,
			"description": t.Description,
			"properties":  map[string]any{"type": map[string]any{"const": t.Name}, "params": params},
		})
	}
	if len(variants) > 0 {
		schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
		schemas["SubmitRequest"] = map[string]any{"oneOf": variants}
	}
	return json.MarshalIndent(doc, "", " ")
}

func (a *API) openapi(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(a.openapiDoc)
}
