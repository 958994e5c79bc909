package transport

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func readAll(t *testing.T, stream string) ([]SSEEvent, error) {
	t.Helper()
	r := NewSSEReader(strings.NewReader(stream))
	var out []SSEEvent
	for {
		ev, err := r.Next()
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func TestSSEReaderSpecCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stream string
		want   []SSEEvent
	}{
		{"basic", "id: 1\nevent: progress\ndata: {\"a\":1}\n\n", []SSEEvent{{ID: "1", Event: "progress", Data: []byte(`{"a":1}`)}}},
		{"multi-line data", "data: a\ndata:b\ndata\n\n", []SSEEvent{{Data: []byte("a\nb\n")}}},
		{"comments and CRLF", ": hi\r\nid: 7\r\ndata: x\r\n\r\n", []SSEEvent{{ID: "7", Data: []byte("x")}}},
		{"bare CR", "data: x\rdata: y\r\r", []SSEEvent{{Data: []byte("x\ny")}}},
		{"no data is not dispatched; id persists", "id: 3\nevent: status\n\ndata: z\n\n", []SSEEvent{{ID: "3", Data: []byte("z")}}},
		{"only one leading space dropped", "data:  two\n\n", []SSEEvent{{Data: []byte(" two")}}},
		{"retry", "retry: 1500\ndata: r\n\n", []SSEEvent{{Data: []byte("r"), Retry: 1500 * time.Millisecond}}},
		{"bad retry ignored", "retry: soon\ndata: r\n\n", []SSEEvent{{Data: []byte("r")}}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: x\x00y\ndata: b\n\n", []SSEEvent{{ID: "1", Data: []byte("a")}, {ID: "1", Data: []byte("b")}}},
		{"unknown field ignored", "foo: bar\ndata: d\n\n", []SSEEvent{{Data: []byte("d")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := readAll(t, tc.stream)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("end: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSSEReaderTruncatedStream(t *testing.T) {
	t.Parallel()
	got, err := readAll(t, "id: 1\ndata: a\n\nid: 2\ndata: b")
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 1 {
		t.Errorf("got %v, %v; want one event and ErrUnexpectedEOF", got, err)
	}
	got, err = readAll(t, "id: 1\ndata: a\n\nid: 2\ndata: b\n")
	if !errors.Is(err, io.EOF) || len(got) != 1 {
		t.Errorf("event without blank line: got %v, %v; want it discarded", got, err)
	}
}

func TestSSEReaderLineLimit(t *testing.T) {
	t.Parallel()
	_, err := readAll(t, "data: "+strings.Repeat("x", MaxSSELineBytes+10)+"\n\n")
	if !errors.Is(err, ErrSSELineTooLong) {
		t.Errorf("got %v, want ErrSSELineTooLong", err)
	}
}

func TestWriteSSERoundTrip(t *testing.T) {
	t.Parallel()
	events := []SSEEvent{
		{ID: "1", Event: "status", Data: []byte(`{"status":"queued"}`), Retry: 2 * time.Second},
		{ID: "2", Event: "log", Data: []byte("line one\nline two\r\nline three")},
		{ID: "3", Event: "complete", Data: []byte("")},
	}
	var buf bytes.Buffer
	for _, ev := range events {
		if err := WriteSSE(&buf, ev); err != nil {
			t.Fatal(err)
		}
		if err := WriteSSEComment(&buf, "keepalive\nnot a field"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := readAll(t, buf.String())
	if !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	events[1].Data = []byte("line one\nline two\nline three")
	if diff := cmp.Diff(events, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := WriteSSE(&buf, SSEEvent{ID: "1\ndata: injected"}); err == nil {
		t.Error("an id with a newline was accepted")
	}
}

func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("id: 1\nevent: progress\ndata: {}\n\n"))
	f.Add([]byte(": c\r\ndata: a\rdata: b\r\n\r\n"))
	f.Add([]byte("retry: 10\nid: \x00\ndata\n\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := NewSSEReader(bytes.NewReader(stream))
		for i := 0; ; i++ {
			ev, err := r.Next()
			if err != nil {
				return
			}
			if i > len(stream) {
				t.Fatal("more events than bytes")
			}
			// Whatever was read can be written and read back the same: the
			// reader never yields an id or event name with a line break.
			var buf bytes.Buffer
			if err := WriteSSE(&buf, ev); err != nil {
				t.Fatalf("WriteSSE refused an event the reader produced: %+v: %v", ev, err)
			}
			again, err := NewSSEReader(&buf).Next()
			if err != nil {
				t.Fatalf("re-read: %v", err)
			}
			if again.ID != ev.ID || again.Event != ev.Event || again.Retry != ev.Retry || !bytes.Equal(again.Data, ev.Data) {
				t.Fatalf("round trip changed the event: %+v -> %+v", ev, again)
			}
		}
	})
}
