package azure

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodePageShapes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body   string
		rows         int
		token, trunc string
	}{
		{"objectArray", `{"totalRecords":3,"count":2,"resultTruncated":"false","$skipToken":"abc","facets":[],"data":[{"id":"/a","n":1},{"id":"/b"}]}`, 2, "abc", "false"},
		{"table form", `{"count":2,"data":{"columns":[{"name":"id","type":"string"},{"name":"n","type":"integer"}],"rows":[["/a",1],["/b",2]]}}`, 2, "", ""},
		{"bool truncated, skipToken spelling", `{"data":[],"resultTruncated":true,"skipToken":"t2"}`, 0, "t2", "true"},
		{"null data", `{"data":null,"count":0}`, 0, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pg, err := decodePage(strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(pg.Data) != tc.rows || pg.SkipToken != tc.token || pg.ResultTruncated != tc.trunc {
				t.Fatalf("%+v", pg)
			}
			if tc.rows > 0 {
				if _, ok := pg.Data[0]["n"].(json.Number); !ok {
					t.Fatalf("n is %T, want json.Number", pg.Data[0]["n"])
				}
			}
		})
	}
	for _, bad := range []string{``, `[]`, `{"data":7}`, `{"data":[1,`, `{"count":"x"}`} {
		if _, err := decodePage(strings.NewReader(bad)); err == nil {
			t.Fatalf("%q decoded", bad)
		}
	}
}

// TestRowsRefusesBrokenPaging: a truncated result without a $skipToken,
// or a $skipToken that does not advance, ends with an error rather than
// a silent partial read or an endless loop.
func TestRowsRefusesBrokenPaging(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, body string }{
		{"truncated", `{"count":1,"totalRecords":5,"resultTruncated":"true","data":[{"id":"/subscriptions/s/x","type":"t"}]}`},
		{"same token", `{"count":1,"totalRecords":5,"resultTruncated":"false","$skipToken":"again","data":[{"id":"/subscriptions/s/x","type":"t"}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			src, err := newResourceGraphSource(context.Background(), Config{TenantID: "t", ARMEndpoint: srv.URL, AccessToken: "tok", HTTPClient: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			var last error
			for row, err := range src.Rows(context.Background(), TableResources, "") {
				if err != nil {
					last = err
					break
				}
				_ = row
				n++
			}
			var re *RequestError
			if last == nil || !errors.As(last, &re) || n > 3 {
				t.Fatalf("%d rows, err %v", n, last)
			}
			if tc.name == "truncated" && !errors.Is(last, ErrTruncated) {
				t.Fatalf("err %v, want ErrTruncated", last)
			}
		})
	}
}
