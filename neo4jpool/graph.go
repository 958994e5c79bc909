package neo4jpool

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j/dbtype"
)

// Limits applied by graph validation.
const (
	// MaxIDLength is the longest accepted node id, in characters (Unicode
	// code points, as JSON Schema's maxLength counts them; so at most 4 KiB).
	MaxIDLength = 1024
	// MaxPropertyKeyLength is the longest accepted property key, in
	// characters.
	MaxPropertyKeyLength = 64
	// MaxLabelsPerNode is the largest number of labels one node may carry.
	MaxLabelsPerNode = 16
	// maxReportedProblems bounds how many problems one ValidationError lists.
	maxReportedProblems = 20
)

// Node is one node of a graph document. It is identified by ID alone: nodes
// with the same ID are the same node, whatever their labels (see [Importer]).
type Node struct {
	// ID identifies the node (1..MaxIDLength characters of UTF-8). It is stored
	// as the property "id".
	ID string `json:"id"`
	// Labels are added to the node (never removed); each must match
	// IdentifierPattern.
	Labels []string `json:"labels,omitempty"`
	// Properties are merged into the node's properties (SET n += ...). A nil
	// value removes that property. The key "id" is reserved.
	Properties map[string]any `json:"properties,omitempty"`
}

// Relationship is one relationship of a graph document: at most one
// relationship of a given Type exists from From to To (see [Importer]).
type Relationship struct {
	// Type is the relationship type; it must match IdentifierPattern.
	Type string `json:"type"`
	// From is the ID of the start node.
	From string `json:"from"`
	// To is the ID of the end node.
	To string `json:"to"`
	// Properties are merged into the relationship's properties.
	Properties map[string]any `json:"properties,omitempty"`
}

// Graph is a graph document: the payload of the "import" operation.
type Graph struct {
	// Nodes are imported first.
	Nodes []Node `json:"nodes"`
	// Relationships are imported after all nodes.
	Relationships []Relationship `json:"relationships"`
	// ChunkSize, when not zero, overrides the importer's chunk size.
	ChunkSize int `json:"chunk_size,omitempty"`
}

// ErrInvalidGraph is matched (with errors.Is) by every *ValidationError.
var ErrInvalidGraph = errors.New("neo4jpool: invalid graph")

// Problem is one reason a graph document is invalid.
type Problem struct {
	// Path locates the value, for example "nodes[3].labels[0]".
	Path string `json:"path"`
	// Message says what is wrong with it.
	Message string `json:"message"`
	// Err is the underlying error, if any (for example one matching
	// ErrInvalidIdentifier).
	Err error `json:"-"`
}

// ValidationError lists what is wrong with a graph document. It matches
// ErrInvalidGraph, and ErrInvalidIdentifier when a label or type was refused.
type ValidationError struct {
	// Problems lists at most 20 problems, in document order.
	Problems []Problem
	// Total counts all problems found, including those not listed.
	Total int
}

// Error implements error.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("neo4jpool: invalid graph: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Path)
		b.WriteString(": ")
		b.WriteString(p.Message)
	}
	if more := e.Total - len(e.Problems); more > 0 {
		fmt.Fprintf(&b, " (and %d more)", more)
	}
	return b.String()
}

// Unwrap returns ErrInvalidGraph and the problems' underlying errors.
func (e *ValidationError) Unwrap() []error {
	errs := []error{ErrInvalidGraph}
	for _, p := range e.Problems {
		if p.Err != nil {
			errs = append(errs, p.Err)
		}
	}
	return errs
}

// validator collects problems.
type validator struct {
	problems []Problem
	total    int
}

func (v *validator) add(path string, err error) {
	v.total++
	if len(v.problems) < maxReportedProblems {
		msg := err.Error()
		// Drop the sentinel prefix: the path already says where we are.
		msg = strings.TrimPrefix(msg, ErrInvalidIdentifier.Error()+": ")
		v.problems = append(v.problems, Problem{Path: path, Message: msg, Err: err})
	}
}

func (v *validator) err() error {
	if v.total == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems, Total: v.total}
}

// loc locates an item: "nodes[3]", or "node" when index < 0. Paths are
// formatted only for problems, so validating a valid document formats
// nothing.
type loc struct {
	prefix string
	index  int
}

func (l loc) String() string {
	if l.index < 0 {
		return l.prefix
	}
	return fmt.Sprintf("%s[%d]", l.prefix, l.index)
}

// ValidateGraph checks a whole graph document without touching the
// database: chunk size (when set), node ids, labels and relationship types
// (IdentifierPattern), property keys and values. It returns nil or a
// *ValidationError. The HTTP layer calls it when an import is submitted.
func ValidateGraph(g Graph) error {
	var v validator
	if g.ChunkSize != 0 {
		if err := ValidateChunkSize(g.ChunkSize); err != nil {
			v.add("chunk_size", err)
		}
	}
	for i := range g.Nodes {
		v.node(loc{"nodes", i}, &g.Nodes[i])
	}
	for i := range g.Relationships {
		v.relationship(loc{"relationships", i}, &g.Relationships[i])
	}
	return v.err()
}

// ValidateNode checks one node like ValidateGraph does.
func ValidateNode(n Node) error {
	var v validator
	v.node(loc{"node", -1}, &n)
	return v.err()
}

// ValidateRelationship checks one relationship like ValidateGraph does.
func ValidateRelationship(r Relationship) error {
	var v validator
	v.relationship(loc{"relationship", -1}, &r)
	return v.err()
}

func (v *validator) node(l loc, n *Node) {
	if err := validateID(n.ID); err != nil {
		v.add(l.String()+".id", err)
	}
	if len(n.Labels) > MaxLabelsPerNode {
		v.add(l.String()+".labels", fmt.Errorf("at most %d labels per node, got %d", MaxLabelsPerNode, len(n.Labels)))
	}
	for i, label := range n.Labels {
		if !isIdentifier(label) {
			v.add(fmt.Sprintf("%s.labels[%d]", l, i), ValidateIdentifier("label", label))
		}
	}
	v.properties(l, n.Properties, true)
}

func (v *validator) relationship(l loc, r *Relationship) {
	if !isIdentifier(r.Type) {
		v.add(l.String()+".type", ValidateIdentifier("relationship type", r.Type))
	}
	if err := validateID(r.From); err != nil {
		v.add(l.String()+".from", err)
	}
	if err := validateID(r.To); err != nil {
		v.add(l.String()+".to", err)
	}
	v.properties(l, r.Properties, false)
}

var errReservedID = errors.New(`property key "id" is reserved for the node id`)

func (v *validator) properties(l loc, props map[string]any, isNode bool) {
	for k, val := range props {
		err := validatePropertyKey(k)
		if err == nil && isNode && k == "id" {
			err = errReservedID
		}
		if err == nil {
			err = validatePropertyValue(val)
		}
		if err != nil {
			v.add(fmt.Sprintf("%s.properties[%q]", l, k), err)
		}
	}
}

func validateID(id string) error {
	switch {
	case id == "":
		return errors.New("id must not be empty")
	case utf8.RuneCountInString(id) > MaxIDLength:
		return fmt.Errorf("id is %d characters long, the limit is %d", utf8.RuneCountInString(id), MaxIDLength)
	case !utf8.ValidString(id):
		return errors.New("id is not valid UTF-8")
	}
	return nil
}

// validatePropertyKey accepts 1..MaxPropertyKeyLength characters of UTF-8 without
// control characters. Keys are sent as parameter map keys, never written
// into Cypher text, so this need not be as strict as IdentifierPattern.
func validatePropertyKey(k string) error {
	switch {
	case k == "":
		return errors.New("property key must not be empty")
	case utf8.RuneCountInString(k) > MaxPropertyKeyLength:
		return fmt.Errorf("property key is %d characters long, the limit is %d", utf8.RuneCountInString(k), MaxPropertyKeyLength)
	case !utf8.ValidString(k):
		return errors.New("property key is not valid UTF-8")
	case strings.IndexFunc(k, unicode.IsControl) >= 0:
		return errors.New("property key contains a control character")
	}
	return nil
}

// validatePropertyValue accepts what Neo4j can store as a property: nil
// (which removes the property), a boolean, an integer that fits int64, a
// float, a string, json.Number, []byte, a temporal or spatial value
// (time.Time and the neo4j/dbtype types), or a list of one of these scalar
// kinds (not []byte) with no nil element and every element of the same kind.
func validatePropertyValue(val any) error {
	if val == nil {
		return nil
	}
	if _, err := scalarKind(val); err == nil {
		return nil
	} else if !errors.Is(err, errNotScalar) {
		return err
	}
	rv := reflect.ValueOf(val)
	switch rv.Kind() {
	case reflect.Slice:
		first := ""
		for i := 0; i < rv.Len(); i++ {
			e := rv.Index(i).Interface()
			if e == nil {
				return fmt.Errorf("list element %d is null; Neo4j cannot store null in a list", i)
			}
			if _, isBytes := e.([]byte); isBytes {
				return fmt.Errorf("list element %d is a byte array; lists of byte arrays cannot be stored", i)
			}
			kind, err := scalarKind(e)
			if err != nil {
				return fmt.Errorf("list element %d: %w", i, err)
			}
			if first == "" {
				first = kind
			} else if kind != first && !(isNumberKind(kind) && isNumberKind(first) && hasJSONNumber(rv)) {
				return fmt.Errorf("list mixes %s and %s values; Neo4j stores only homogeneous lists", first, kind)
			}
		}
		return nil
	case reflect.Map:
		return errors.New("maps cannot be stored as property values; flatten them into separate keys")
	default:
		return fmt.Errorf("values of type %T cannot be stored as a property", val)
	}
}

var errNotScalar = errors.New("not a scalar")

// scalarKind names the storage kind of a scalar property value.
func scalarKind(val any) (string, error) {
	switch v := val.(type) {
	case []byte:
		return "bytes", nil
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return "integer", nil
		}
		if _, err := v.Float64(); err != nil {
			return "", fmt.Errorf("json number %q is not a valid number", v.String())
		}
		return "float", nil
	case time.Time:
		return "datetime", nil
	case dbtype.Date:
		return "date", nil
	case dbtype.LocalDateTime:
		return "localdatetime", nil
	case dbtype.LocalTime:
		return "localtime", nil
	case dbtype.Time:
		return "time", nil
	case dbtype.Duration:
		return "duration", nil
	case dbtype.Point2D, dbtype.Point3D:
		return "point", nil
	}
	rv := reflect.ValueOf(val)
	switch rv.Kind() {
	case reflect.Bool:
		return "boolean", nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return "integer", nil
	case reflect.Uint, reflect.Uint64:
		if rv.Uint() > math.MaxInt64 {
			return "", fmt.Errorf("integer %d does not fit a signed 64-bit integer", rv.Uint())
		}
		return "integer", nil
	case reflect.Float32, reflect.Float64:
		return "float", nil
	case reflect.String:
		return "string", nil
	case reflect.Slice, reflect.Map:
		return "", errNotScalar
	case reflect.Pointer:
		return "", fmt.Errorf("pointer values (%T) are not accepted; pass the value", val)
	}
	return "", fmt.Errorf("values of type %T cannot be stored as a property", val)
}

func isNumberKind(k string) bool { return k == "integer" || k == "float" }

func hasJSONNumber(rv reflect.Value) bool {
	for i := 0; i < rv.Len(); i++ {
		if _, ok := rv.Index(i).Interface().(json.Number); ok {
			return true
		}
	}
	return false
}

// normalizeProperties prepares property values for the driver:
//
//   - json.Number values (from a decoder with UseNumber) become int64 or
//     float64, so that integers stay integers; in a list holding a
//     json.Number, the numbers become all int64 when every one is
//     integral, else all float64;
//   - a time.Time in time.Local, alone or as a list element, becomes the
//     same instant in UTC: the driver would send its zone by the name
//     "Local", which Neo4j rejects.
//
// The input map is returned unchanged when nothing needs converting;
// otherwise a converted copy is returned (the input is not modified).
func normalizeProperties(props map[string]any) map[string]any {
	needs := false
	for _, v := range props {
		if containsJSONNumber(v) || containsLocalTime(v) {
			needs = true
			break
		}
	}
	if !needs {
		return props
	}
	out := make(map[string]any, len(props))
	for k, v := range props {
		out[k] = normalizeValue(v)
	}
	return out
}

func containsJSONNumber(v any) bool {
	switch x := v.(type) {
	case json.Number:
		return true
	case []any:
		for _, e := range x {
			if _, ok := e.(json.Number); ok {
				return true
			}
		}
	case []json.Number:
		return true
	}
	return false
}

// isLocalTime reports whether v is a time.Time in time.Local, whose zone
// the driver would send by the name "Local", which Neo4j rejects.
func isLocalTime(v any) bool {
	t, ok := v.(time.Time)
	return ok && t.Location() == time.Local
}

var timeType = reflect.TypeFor[time.Time]()

// containsLocalTime reports whether v is a time.Time in time.Local or a
// list with such an element (validation admits no deeper nesting).
func containsLocalTime(v any) bool {
	if isLocalTime(v) {
		return true
	}
	switch x := v.(type) {
	case []any:
		return slices.ContainsFunc(x, isLocalTime)
	case []time.Time:
		return slices.ContainsFunc(x, func(t time.Time) bool { return t.Location() == time.Local })
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice || rv.Type().Elem() != timeType {
		return false
	}
	for i := 0; i < rv.Len(); i++ {
		if isLocalTime(rv.Index(i).Interface()) {
			return true
		}
	}
	return false
}

// utcIfLocal returns t in UTC when it is in time.Local (the same instant,
// in a zone Neo4j knows), else t unchanged.
func utcIfLocal(t time.Time) time.Time {
	if t.Location() == time.Local {
		return t.UTC()
	}
	return t
}

func normalizeValue(v any) any {
	switch x := v.(type) {
	case time.Time:
		return utcIfLocal(x)
	case []time.Time:
		out := make([]time.Time, len(x))
		for i, t := range x {
			out[i] = utcIfLocal(t)
		}
		return out
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []json.Number:
		list := make([]any, len(x))
		for i, e := range x {
			list[i] = e
		}
		return normalizeValue(list)
	case []any:
		// A list mixing json.Number with other numbers is unified: all
		// int64 when every number is integral, else all float64.
		allInt := true
		for _, e := range x {
			switch n := e.(type) {
			case json.Number:
				if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
					allInt = false
				}
			case float32, float64:
				allInt = false
			}
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
			if t, ok := e.(time.Time); ok {
				out[i] = utcIfLocal(t)
				continue
			}
			if n, ok := e.(json.Number); ok {
				if allInt {
					out[i], _ = n.Int64()
				} else {
					out[i], _ = n.Float64()
				}
				continue
			}
			if allInt {
				continue
			}
			rv := reflect.ValueOf(e)
			switch rv.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				out[i] = float64(rv.Int())
			case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				out[i] = float64(rv.Uint())
			case reflect.Float32:
				out[i] = rv.Float()
			}
		}
		return out
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.Type().Elem() == timeType {
		// A named []time.Time type: keep the type, convert the elements.
		out := reflect.MakeSlice(rv.Type(), rv.Len(), rv.Len())
		for i := 0; i < rv.Len(); i++ {
			out.Index(i).Set(reflect.ValueOf(utcIfLocal(rv.Index(i).Interface().(time.Time))))
		}
		return out.Interface()
	}
	return v
}
