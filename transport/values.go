package transport

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j/dbtype"
)

// jsonValue converts a value returned by the Neo4j driver into something
// encoding/json writes faithfully:
//
//   - nodes: {"kind":"node","element_id","labels","properties"};
//   - relationships: {"kind":"relationship","element_id","type",
//     "start_element_id","end_element_id","properties"};
//   - paths: {"kind":"path","nodes":[...],"relationships":[...]};
//   - DateTime as RFC 3339 with nanoseconds and offset; Date, Time,
//     LocalTime, LocalDateTime and Duration as ISO-8601 strings;
//   - points: {"kind":"point","srid","x","y"[,"z"]};
//   - 64-bit integers as exact JSON numbers; NaN and ±Inf as the strings
//     "NaN", "Infinity", "-Infinity"; byte arrays as base64.
func jsonValue(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int64, []byte:
		return x
	case float64:
		switch {
		case math.IsNaN(x):
			return "NaN"
		case math.IsInf(x, 1):
			return "Infinity"
		case math.IsInf(x, -1):
			return "-Infinity"
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case dbtype.Node:
		return nodeJSON(x)
	case dbtype.Relationship:
		return relJSON(x)
	case dbtype.Path:
		nodes := make([]any, len(x.Nodes))
		for i, n := range x.Nodes {
			nodes[i] = nodeJSON(n)
		}
		rels := make([]any, len(x.Relationships))
		for i, r := range x.Relationships {
			rels[i] = relJSON(r)
		}
		return map[string]any{"kind": "path", "nodes": nodes, "relationships": rels}
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case dbtype.Date:
		return x.String()
	case dbtype.LocalTime:
		return x.String()
	case dbtype.LocalDateTime:
		return x.String()
	case dbtype.Time:
		return x.String()
	case dbtype.Duration:
		return x.String()
	case dbtype.Point2D:
		return map[string]any{"kind": "point", "srid": x.SpatialRefId, "x": jsonValue(x.X), "y": jsonValue(x.Y)}
	case dbtype.Point3D:
		return map[string]any{"kind": "point", "srid": x.SpatialRefId, "x": jsonValue(x.X), "y": jsonValue(x.Y), "z": jsonValue(x.Z)}
	case *dbtype.InvalidValue:
		return map[string]any{"kind": "invalid", "message": x.Message}
	}
	return fmt.Sprint(v) // a type this version does not know: its text form
}

func nodeJSON(n dbtype.Node) map[string]any {
	labels := n.Labels
	if labels == nil {
		labels = []string{}
	}
	return map[string]any{"kind": "node", "element_id": n.ElementId, "labels": labels, "properties": jsonValue(nonNilMap(n.Props))}
}

func relJSON(r dbtype.Relationship) map[string]any {
	return map[string]any{"kind": "relationship", "element_id": r.ElementId, "type": r.Type,
		"start_element_id": r.StartElementId, "end_element_id": r.EndElementId, "properties": jsonValue(nonNilMap(r.Props))}
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// paramValue converts a JSON value decoded with UseNumber into a Cypher
// parameter: integral numbers become int64 (exactly, up to 64 bits), other
// numbers float64. An integer literal (no fraction, no exponent) outside
// the 64-bit range of Cypher integers is an error rather than a rounded
// float, as is a number beyond the float64 range.
func paramValue(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		if !strings.ContainsAny(string(x), ".eE") {
			return nil, fmt.Errorf("integer %s is outside the 64-bit range of Cypher integers (-9223372036854775808 to 9223372036854775807); send it as a string, or as a float such as 1.5e20 if rounding is acceptable", truncate(string(x), 40))
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s is outside the range of 64-bit floats", truncate(string(x), 40))
		}
		return f, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := paramValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := paramValue(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	}
	return v, nil
}
