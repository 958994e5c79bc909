package transport

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// DefaultQueryMaxBytes caps the rows of one query result, measured as JSON
// (ATG_QUERY_MAX_BYTES): 16 MiB.
const DefaultQueryMaxBytes = 16 << 20

// rowSink takes a query's rows as they are read, within a byte budget.
type rowSink interface {
	// add takes one row; false (and no error) means it does not fit in
	// the budget: the result is truncated before it.
	add(row []any) (bool, error)
}

// encodedRows keeps rows encoded as the JSON of the response's "rows"
// array, so that a request holds at most its byte budget of result (plus
// the row being read), never the decoded rows and their encoding at once.
type encodedRows struct {
	max int64
	buf bytes.Buffer
	n   int
}

func (e *encodedRows) add(row []any) (bool, error) {
	b, err := json.Marshal(row)
	if err != nil {
		return false, err
	}
	sep := 0
	if e.n > 0 {
		sep = 1
	}
	if int64(e.buf.Len()+sep+len(b)) > e.max {
		return false, nil
	}
	if sep == 1 {
		e.buf.WriteByte(',')
	}
	e.buf.Write(b)
	e.n++
	return true, nil
}

// writeResponse writes resp with the encoded rows as its "rows".
func (e *encodedRows) writeResponse(w http.ResponseWriter, resp *QueryResponse) {
	cols, err := json.Marshal(resp.Columns)
	if err != nil {
		WriteError(w, CodeInternal, "response could not be encoded", nil)
		return
	}
	tail := struct {
		RowCount        int     `json:"row_count"`
		Truncated       bool    `json:"truncated"`
		TruncatedReason string  `json:"truncated_reason,omitempty"`
		ExecutionTimeMS float64 `json:"execution_time_ms"`
	}{resp.RowCount, resp.Truncated, resp.TruncatedReason, resp.ExecutionTimeMS}
	rest, _ := json.Marshal(tail) // plain fields: cannot fail
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	size := len(`{"columns":,"rows":[],`) + len(cols) + e.buf.Len() + len(rest) // rest has its own braces: -1 +1 for the newline
	h.Set("Content-Length", strconv.Itoa(size))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"columns":`))
	_, _ = w.Write(cols)
	_, _ = w.Write([]byte(`,"rows":[`))
	_, _ = w.Write(e.buf.Bytes())
	_, _ = w.Write([]byte(`],`))
	_, _ = w.Write(rest[1:])
	_, _ = w.Write([]byte("\n"))
}

// decode returns the rows as a remote client decodes them: JSON types,
// numbers as json.Number.
func (e *encodedRows) decode() ([][]any, error) {
	dec := json.NewDecoder(io.MultiReader(strings.NewReader("["), bytes.NewReader(e.buf.Bytes()), strings.NewReader("]")))
	dec.UseNumber()
	rows := make([][]any, 0, e.n)
	if err := dec.Decode(&rows); err != nil {
		return nil, err
	}
	return rows, nil
}
