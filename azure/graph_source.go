package azure

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"strings"
	"sync"
)

// MemorySource is a Source over rows held in memory, e.g. a tenant
// fixture or a generated one. Like a Resource Graph endpoint that ignores
// everything after a query's table name, it yields every row of the table
// whatever subscription is asked for, unless FilterSubscriptions is set.
// PageSize rows count as one page and one API call (default 1000). It is
// safe for concurrent use once built.
type MemorySource struct {
	// Tables holds the rows of each table.
	Tables map[Table][]Row
	// FilterSubscriptions makes Rows yield only the rows whose
	// subscriptionId matches the subscription asked for.
	FilterSubscriptions bool
	// PageSize is the number of rows per page; 0 means 1000.
	PageSize int

	mu    sync.Mutex
	stats Stats
}

// ReadMemorySource decodes a document {"Resources": [...],
// "ResourceContainers": [...], "AuthorizationResources": [...]} (other
// keys are ignored) into a MemorySource; numbers stay json.Number as in
// Resource Graph pages.
func ReadMemorySource(r io.Reader) (*MemorySource, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var doc map[string]json.RawMessage
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("azure: read tables: %w", err)
	}
	s := &MemorySource{Tables: make(map[Table][]Row)}
	for _, t := range []Table{TableResources, TableResourceContainers, TableAuthorizationResources} {
		raw, ok := doc[string(t)]
		if !ok {
			continue
		}
		d := json.NewDecoder(strings.NewReader(string(raw)))
		d.UseNumber()
		var rows []Row
		if err := d.Decode(&rows); err != nil {
			return nil, fmt.Errorf("azure: read table %s: %w", t, err)
		}
		s.Tables[t] = rows
	}
	return s, nil
}

// Rows implements Source.
func (s *MemorySource) Rows(ctx context.Context, table Table, subscription string) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		size := s.PageSize
		if size <= 0 {
			size = 1000
		}
		rows := s.Tables[table]
		for i, r := range rows {
			if i%size == 0 {
				if err := ctx.Err(); err != nil {
					yield(nil, err)
					return
				}
				s.mu.Lock()
				s.stats.APICalls++
				s.stats.Pages++
				s.mu.Unlock()
			}
			if s.FilterSubscriptions && subscription != "" && !strings.EqualFold(str(r["subscriptionId"]), subscription) {
				continue
			}
			if !yield(r, nil) {
				return
			}
		}
		if len(rows) == 0 {
			s.mu.Lock()
			s.stats.APICalls++
			s.stats.Pages++
			s.mu.Unlock()
		}
	}
}

// Stats implements Source.
func (s *MemorySource) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}
