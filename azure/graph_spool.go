package azure

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"os"
)

// relSpool holds a scan's relationships until every node is written: in
// a temporary file (JSON lines, deleted when the scan ends) so that memory
// does not grow with the tenant, or in memory when no temporary file can
// be created.
type relSpool struct {
	f   *os.File
	w   *bufio.Writer
	enc *json.Encoder
	mem []Relationship
	n   int64
	err error
}

func newRelSpool() *relSpool {
	f, err := os.CreateTemp("", "atg-scan-*.jsonl")
	if err != nil {
		return &relSpool{}
	}
	w := bufio.NewWriterSize(f, 64<<10)
	return &relSpool{f: f, w: w, enc: json.NewEncoder(w)}
}

// add keeps rs.
func (s *relSpool) add(rs ...Relationship) {
	for _, r := range rs {
		s.n++
		switch {
		case s.f == nil:
			s.mem = append(s.mem, r)
		case s.err == nil:
			if err := s.enc.Encode(r); err != nil {
				s.err = fmt.Errorf("azure: spool relationships to %s: %w", s.f.Name(), err)
			}
		}
	}
}

// all yields the relationships kept, in the order added.
func (s *relSpool) all() iter.Seq2[Relationship, error] {
	return func(yield func(Relationship, error) bool) {
		if s.f == nil {
			for _, r := range s.mem {
				if !yield(r, nil) {
					return
				}
			}
			return
		}
		if s.err == nil {
			s.err = s.w.Flush()
		}
		if s.err == nil {
			_, s.err = s.f.Seek(0, io.SeekStart)
		}
		if s.err != nil {
			yield(Relationship{}, s.err)
			return
		}
		dec := json.NewDecoder(bufio.NewReaderSize(s.f, 64<<10))
		for {
			var r Relationship
			if err := dec.Decode(&r); err == io.EOF {
				return
			} else if err != nil {
				yield(Relationship{}, fmt.Errorf("azure: read spooled relationships: %w", err))
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// close deletes the temporary file.
func (s *relSpool) close() {
	if s.f != nil {
		name := s.f.Name()
		_ = s.f.Close()
		_ = os.Remove(name)
		s.f = nil
	}
	s.mem = nil
}
