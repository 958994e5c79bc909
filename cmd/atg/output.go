package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// rowWriter writes rows of values in the jsonl, csv or tsv format.
//
//   - jsonl: one JSON object per row, keys in column order; null is null.
//   - csv (RFC 4180): a null is an empty field, an empty string is "";
//     strings are written as they are, quoted when needed; other values
//     as compact JSON.
//   - tsv: a null is \N (as PostgreSQL's and MySQL's text formats write
//     it); strings have \, tab, newline and carriage return escaped as \\,
//     \t, \n and \r; other values are compact JSON.
type rowWriter struct {
	w         io.Writer
	format    string
	columns   []string
	noHeaders bool
	started   bool
}

// header writes the header line (csv and tsv, unless noHeaders).
func (r *rowWriter) header() error {
	r.started = true
	if r.noHeaders || r.format == formatJSONL {
		return nil
	}
	fields := make([]any, len(r.columns))
	for i, c := range r.columns {
		fields[i] = c
	}
	return r.line(fields)
}

// row writes one row; values beyond the columns are ignored, missing ones
// are null.
func (r *rowWriter) row(values []any) error {
	if !r.started {
		if err := r.header(); err != nil {
			return err
		}
	}
	if len(values) < len(r.columns) {
		values = append(values, make([]any, len(r.columns)-len(values))...)
	}
	return r.line(values[:len(r.columns)])
}

// line writes values as one line of the format.
func (r *rowWriter) line(values []any) error {
	var b bytes.Buffer
	switch r.format {
	case formatJSONL:
		b.WriteByte('{')
		for i, c := range r.columns {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(compactJSON(c))
			b.WriteByte(':')
			b.Write(compactJSON(values[i]))
		}
		b.WriteByte('}')
	case formatCSV:
		for i, v := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(csvField(v))
		}
		b.WriteString("\r\n")
		_, err := r.w.Write(b.Bytes())
		return err
	case formatTSV:
		for i, v := range values {
			if i > 0 {
				b.WriteByte('\t')
			}
			b.WriteString(tsvField(v))
		}
	default:
		return fmt.Errorf("rowWriter: format %q", r.format)
	}
	b.WriteByte('\n')
	_, err := r.w.Write(b.Bytes())
	return err
}

// compactJSON encodes v as compact JSON, HTML characters unescaped.
func compactJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte("null")
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// csvField renders one CSV field: null empty, "" quoted, strings as they
// are (quoted when they hold a comma, quote, line break or edge space),
// other values as compact JSON (quoted when needed).
func csvField(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		if x == "" {
			return `""`
		}
		s = x
	default:
		s = string(compactJSON(x))
	}
	if strings.ContainsAny(s, ",\"\r\n") || strings.TrimSpace(s) != s {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

// tsvEscaper escapes a TSV field.
var tsvEscaper = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)

// tsvField renders one TSV field: null as \N, strings escaped, other
// values as compact JSON.
func tsvField(v any) string {
	switch x := v.(type) {
	case nil:
		return `\N`
	case string:
		return tsvEscaper.Replace(x)
	}
	return tsvEscaper.Replace(string(compactJSON(v)))
}
