package atg

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/atgraph/atg/operations"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzImportParams feeds arbitrary params to the import operation's
// submit-time validation: it never panics, rejects with a ValidationError,
// and what it accepts is a valid graph that survives a JSON round trip.
func FuzzImportParams(f *testing.F) {
	for _, s := range []string{
		`{"nodes":[{"id":"t","labels":["Tenant"],"properties":{"n":1,"l":[1,2],"s":"x","b":true,"z":null}}],"relationships":[{"type":"CONTAINS","from":"t","to":"s"}],"chunk_size":500}`,
		`{"nodes":[{"id":"a","labels":["Resource` + "`" + `) DETACH DELETE n //"]}]}`,
		`{"chunk_size":447.0}`, `{"chunk_size":-1}`, `{"nodes":null}`, `{"nodes":[{"id":""}]}`,
		`{"nodes":[{"id":"a","properties":{"id":"x"}}]}`, `{"edges":[]}`, `[]`, `{"nodes":[{"id":"a","properties":{"m":{"k":1}}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, params []byte) {
		g, err := decodeImportParams(params)
		if err != nil {
			var ve *operations.ValidationError
			if !errors.As(err, &ve) || ve.Message == "" {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		encoded, err := json.Marshal(g)
		if err != nil {
			t.Fatalf("accepted graph does not encode: %v", err)
		}
		again, err := decodeImportParams(encoded)
		if err != nil {
			t.Fatalf("re-encoded graph rejected: %v\n%s", err, encoded)
		}
		if diff := cmp.Diff(g, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("a JSON round trip changed the graph (-first +again):\n%s", diff)
		}
	})
}
