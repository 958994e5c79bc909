package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseParam checks how --param values are typed.
func TestParseParam(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		name string
		want any
		err  string
	}{
		{"n=42", "n", json.Number("42"), ""},
		{"f=-1.5e3", "f", json.Number("-1.5e3"), ""},
		{"big=123456789012345678901234567890", "big", json.Number("123456789012345678901234567890"), ""},
		{"b=true", "b", true, ""},
		{"z=null", "z", nil, ""},
		{`s="quoted"`, "s", "quoted", ""},
		{`l=[1, "a", null]`, "l", []any{json.Number("1"), "a", nil}, ""},
		{`m={"k": [true]}`, "m", map[string]any{"k": []any{true}}, ""},
		{"s=hello world", "s", "hello world", ""},
		{"s=TRUE", "s", "TRUE", ""},
		{"s=", "s", "", ""},
		{"s=a=b", "s", "a=b", ""},
		{"s=[1,", "s", "[1,", ""},
		{"s=1 2", "s", "1 2", ""},
		{"s= 7 ", "s", json.Number("7"), ""},
		{"_x1=x", "_x1", "x", ""},
		{"novalue", "", nil, "want name=value"},
		{"=1", "", nil, "the name must be"},
		{"a-b=1", "", nil, "the name must be"},
	}
	for _, tt := range tests {
		name, v, err := parseParam(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseParam(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || name != tt.name || !cmp.Equal(v, tt.want) {
			t.Errorf("parseParam(%q) = %q, %#v, %v; want %q, %#v", tt.in, name, v, err, tt.name, tt.want)
		}
	}
}

// TestCell checks how table cells render values, graph values included.
func TestCell(t *testing.T) {
	t.Parallel()
	node := func(id string, labels ...any) map[string]any {
		return map[string]any{"kind": "node", "element_id": "e-" + id, "labels": labels, "properties": map[string]any{"id": id, "z": json.Number("1"), "name": "N" + id}}
	}
	short := func(id string, label string) map[string]any {
		return map[string]any{"kind": "node", "element_id": "e-" + id, "labels": []any{label}, "properties": map[string]any{"id": id}}
	}
	rel := map[string]any{"kind": "relationship", "element_id": "r1", "type": "CONTAINS", "start_element_id": "e-a", "end_element_id": "e-b", "properties": map[string]any{}}
	tests := []struct {
		in   any
		want string
	}{
		{nil, "null"},
		{"null", `"null"`}, // a string is not a null
		{"", `""`},
		{"true", `"true"`},
		{"42", `"42"`},
		{" 1.5", `" 1.5"`},
		{"null and more", "null and more"},
		{"plain text", "plain text"},
		{"tab\there\nnewline", `tab\there\nnewline`},
		{json.Number("9007199254740993"), "9007199254740993"},
		{true, "true"},
		{[]any{json.Number("1"), "two", nil, []any{}}, `[1, "two", null, []]`},
		{map[string]any{"b": json.Number("2"), "a": "x", "with space": true}, "{a: \"x\", b: 2, `with space`: true}"},
		{node("a", "Resource", "Odd Label"), "(:Resource:`Odd Label` {id: \"a\", name: \"Na\", z: 1})"},
		{map[string]any{"kind": "node", "labels": []any{}, "properties": map[string]any{}}, "()"},
		{rel, "[:CONTAINS]"},
		{map[string]any{"kind": "path", "nodes": []any{short("a", "T"), short("b", "S"), short("c", "R")},
			"relationships": []any{rel, map[string]any{"kind": "relationship", "type": "USES", "start_element_id": "e-c", "end_element_id": "e-b", "properties": map[string]any{"w": json.Number("2")}}}},
			`(:T {id: "a"})-[:CONTAINS]->(:S {id: "b"})<-[:USES {w: 2}]-(:R {id: "c"})`},
		{map[string]any{"kind": "path", "nodes": []any{node("a", "T")}, "relationships": []any{}}, `(:T {id: "a", name: "Na", z: 1})`},
		{map[string]any{"kind": "path", "nodes": []any{short("a", "T")}, "relationships": []any{rel}}, "{kind: \"path\", nodes: [(:T {id: \"a\"})], relationships: [[:CONTAINS]]}"},
		{map[string]any{"kind": "point", "srid": json.Number("4326"), "x": json.Number("1.5"), "y": json.Number("2")}, "point({srid: 4326, x: 1.5, y: 2})"},
		{map[string]any{"kind": "node", "labels": "not a list"}, `{kind: "node", labels: "not a list"}`},
		{strings.Repeat("é", 100), strings.Repeat("é", 79) + "…"},
	}
	for _, tt := range tests {
		if got := cell(tt.in); got != tt.want {
			t.Errorf("cell(%#v)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}

// TestGraphParams checks the local checks of an import document.
func TestGraphParams(t *testing.T) {
	t.Parallel()
	doc := []byte(`{"nodes": [{"id": "a", "labels": ["X"]}], "relationships": [], "chunk_size": 5}`)
	got, err := graphParams("doc.json", doc, 0)
	if err != nil || string(got["chunk_size"]) != "5" || string(got["nodes"]) != `[{"id": "a", "labels": ["X"]}]` {
		t.Errorf("graphParams = %v, %v", got, err)
	}
	got, err = graphParams("doc.json", doc, 250)
	if err != nil || string(got["chunk_size"]) != "250" {
		t.Errorf("--chunk-size override = %s, %v", got["chunk_size"], err)
	}
	for _, tt := range []struct{ in, err string }{
		{"", "stdin is not a graph document: EOF"},
		{"null", "want a JSON object"},
		{`"text"`, "want a JSON object"},
		{`{"nodes": []} {}`, "unexpected data after the document"},
		{"{\n\n  nodes: []}", "invalid character 'n' looking for beginning of object key string (line 3)"},
	} {
		if _, err := graphParams("-", []byte(tt.in), 0); err == nil || !strings.Contains(err.Error(), tt.err) || exitCode(err) != exitUsage {
			t.Errorf("graphParams(%q) = %v, want %q (exit 2)", tt.in, err, tt.err)
		}
	}
}
