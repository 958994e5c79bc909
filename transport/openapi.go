package transport

import (
	_ "embed"
	"net/http"
)

// OpenAPIDocument is the OpenAPI 3 description of the v1 API, served on
// /openapi.json. A test checks it describes exactly the registered routes.
//
//go:embed openapi.json
var OpenAPIDocument []byte

func (a *API) openapi(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(OpenAPIDocument)
}
