package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxCellWidth is where table cells are cut (with "…"); --format json
// prints values in full.
const maxCellWidth = 80

// cell renders a query value for a table cell: strings as they are (with
// control characters escaped) unless they would read as another value,
// everything else as a compact literal, cut at maxCellWidth characters.
// The string "null", "true", "42" or "" is shown quoted, so that it looks
// different from a null, a boolean, a number or an empty cell.
func cell(v any) string {
	var s string
	if str, ok := v.(string); ok {
		s = escapeControls(str)
		if readsAsLiteral(str) {
			s = strconv.Quote(str)
		}
	} else {
		var b strings.Builder
		literal(&b, v)
		s = b.String()
	}
	if utf8.RuneCountInString(s) > maxCellWidth {
		r := []rune(s)
		s = string(r[:maxCellWidth-1]) + "…"
	}
	return s
}

// readsAsLiteral reports whether a table would show string s like a
// value of another type: empty, null, true, false or a number.
func readsAsLiteral(s string) bool {
	switch strings.TrimSpace(s) {
	case "", "null", "true", "false":
		return true
	}
	_, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return err == nil
}

// escapeControls makes tabs, newlines and other control characters
// visible so they cannot break the table.
func escapeControls(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// isControl reports whether r is an ASCII control character.
func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// identifier is a key that needs no backticks.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// literal writes v in a Cypher-like notation: strings quoted, lists
// [a, b], maps {k: v} with sorted keys, and the API's encodings of graph
// values (see transport's jsonValue) as (:Label {props}) for nodes,
// [:TYPE {props}] for relationships, (a)-[:T]->(b) for paths and
// point({...}) for points.
func literal(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		b.WriteString(strconv.Quote(x))
	case json.Number:
		b.WriteString(x.String())
	case bool, float64, int, int64:
		fmt.Fprint(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			literal(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		switch x["kind"] {
		case "node":
			if nodeLiteral(b, x) {
				return
			}
		case "relationship":
			if relLiteral(b, x, "") {
				return
			}
		case "path":
			if pathLiteral(b, x) {
				return
			}
		case "point":
			b.WriteString("point(")
			mapLiteral(b, without(x, "kind"))
			b.WriteByte(')')
			return
		}
		mapLiteral(b, x)
	default:
		fmt.Fprint(b, x)
	}
}

// mapLiteral writes {k: v, ...} with sorted keys, id and name first.
func mapLiteral(b *strings.Builder, m map[string]any) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		switch k {
		case "id":
			return 0
		case "name":
			return 1
		}
		return 2
	}
	slices.SortFunc(keys, func(a, c string) int {
		if d := rank(a) - rank(c); d != 0 {
			return d
		}
		return strings.Compare(a, c)
	})
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(key(k))
		b.WriteString(": ")
		literal(b, m[k])
	}
	b.WriteByte('}')
}

// key quotes a map key or label with backticks unless it is an identifier.
func key(k string) string {
	if identifier.MatchString(k) {
		return k
	}
	return "`" + strings.ReplaceAll(k, "`", "``") + "`"
}

// without returns a copy of m without key k.
func without(m map[string]any, k string) map[string]any {
	out := make(map[string]any, len(m))
	for mk, v := range m {
		if mk != k {
			out[mk] = v
		}
	}
	return out
}

// nodeLiteral writes (:A:B {props}); false if x is not a node encoding.
func nodeLiteral(b *strings.Builder, x map[string]any) bool {
	labels, ok1 := x["labels"].([]any)
	props, ok2 := x["properties"].(map[string]any)
	if !ok1 || !ok2 {
		return false
	}
	b.WriteByte('(')
	for _, l := range labels {
		b.WriteString(":" + key(fmt.Sprint(l)))
	}
	if len(props) > 0 {
		if len(labels) > 0 {
			b.WriteByte(' ')
		}
		mapLiteral(b, props)
	}
	b.WriteByte(')')
	return true
}

// relLiteral writes [:TYPE {props}], or -[:TYPE {props}]-> when dir is
// "->" and <-[:TYPE {props}]- when dir is "<-"; false if x is not a
// relationship encoding.
func relLiteral(b *strings.Builder, x map[string]any, dir string) bool {
	typ, ok1 := x["type"].(string)
	props, ok2 := x["properties"].(map[string]any)
	if !ok1 || !ok2 {
		return false
	}
	switch dir {
	case "->":
		b.WriteByte('-')
	case "<-":
		b.WriteString("<-")
	}
	b.WriteString("[:" + key(typ))
	if len(props) > 0 {
		b.WriteByte(' ')
		mapLiteral(b, props)
	}
	b.WriteByte(']')
	switch dir {
	case "->":
		b.WriteString("->")
	case "<-":
		b.WriteByte('-')
	}
	return true
}

// pathLiteral writes (a)-[:T]->(b)<-[:U]-(c); false if x is not a path
// encoding.
func pathLiteral(b *strings.Builder, x map[string]any) bool {
	nodes, ok1 := x["nodes"].([]any)
	rels, ok2 := x["relationships"].([]any)
	if !ok1 || !ok2 || len(nodes) == 0 || len(rels) != len(nodes)-1 {
		return false
	}
	var out strings.Builder
	for i, n := range nodes {
		nm, ok := n.(map[string]any)
		if !ok || !nodeLiteral(&out, nm) {
			return false
		}
		if i == len(rels) {
			break
		}
		rm, ok := rels[i].(map[string]any)
		if !ok {
			return false
		}
		dir := "->"
		if rm["start_element_id"] != nm["element_id"] {
			dir = "<-"
		}
		if !relLiteral(&out, rm, dir) {
			return false
		}
	}
	b.WriteString(out.String())
	return true
}
