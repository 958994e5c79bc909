package transport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// SSEEvent is one server-sent event (text/event-stream).
type SSEEvent struct {
	// ID is the event's id field; the client sends the last one it saw as
	// Last-Event-ID when it reconnects.
	ID string
	// Event is the event type; empty means "message".
	Event string
	// Data is the payload (UTF-8 text; newlines allowed).
	Data []byte
	// Retry, when positive, tells the client how long to wait before
	// reconnecting.
	Retry time.Duration
}

// ErrSSELineTooLong is returned by SSEReader.Next for a line longer than
// MaxSSELineBytes.
var ErrSSELineTooLong = errors.New("transport: event-stream line too long")

// MaxSSELineBytes bounds one line of an event stream read by SSEReader.
const MaxSSELineBytes = 1 << 20

// WriteSSE encodes ev in the text/event-stream format. Newlines in Data
// become several data lines; CR and LF in ID and Event are rejected.
func WriteSSE(w io.Writer, ev SSEEvent) error {
	if strings.ContainsAny(ev.ID, "\r\n\x00") || strings.ContainsAny(ev.Event, "\r\n") {
		return fmt.Errorf("transport: SSE id and event must not contain line breaks")
	}
	var b bytes.Buffer
	if ev.Retry > 0 {
		fmt.Fprintf(&b, "retry: %d\n", ev.Retry.Milliseconds())
	}
	if ev.ID != "" {
		b.WriteString("id: " + ev.ID + "\n")
	}
	if ev.Event != "" {
		b.WriteString("event: " + ev.Event + "\n")
	}
	data := bytes.ReplaceAll(ev.Data, []byte("\r\n"), []byte("\n"))
	data = bytes.ReplaceAll(data, []byte("\r"), []byte("\n"))
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// WriteSSEComment writes a comment line (a heartbeat clients ignore).
func WriteSSEComment(w io.Writer, text string) error {
	_, err := io.WriteString(w, ": "+strings.NewReplacer("\r", " ", "\n", " ").Replace(text)+"\n\n")
	return err
}

// SSEReader decodes a text/event-stream following the WHATWG rules: lines
// end in LF, CRLF or CR; comments start with ':'; one leading space after
// the colon is dropped; data lines are joined with LF; an event is
// dispatched at a blank line and only if it has data. LastEventID persists
// across events as the spec requires.
type SSEReader struct {
	r           *bufio.Reader
	LastEventID string
	pendingCR   bool
}

// NewSSEReader returns a reader of the event stream r.
func NewSSEReader(r io.Reader) *SSEReader {
	return &SSEReader{r: bufio.NewReaderSize(r, 4096)}
}

// readLine returns one line without its terminator.
func (s *SSEReader) readLine() (string, error) {
	var line []byte
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				return "", io.ErrUnexpectedEOF // an unterminated last line is discarded
			}
			return "", err
		}
		if s.pendingCR {
			s.pendingCR = false
			if c == '\n' {
				continue // the LF of a CRLF
			}
		}
		switch c {
		case '\n':
			return string(line), nil
		case '\r':
			s.pendingCR = true
			return string(line), nil
		}
		if len(line) >= MaxSSELineBytes {
			return "", ErrSSELineTooLong
		}
		line = append(line, c)
	}
}

// Next returns the next dispatched event. At the end of the stream it
// returns io.EOF (a final event without its blank line is discarded, as the
// spec says) or io.ErrUnexpectedEOF when the stream stopped mid-line.
func (s *SSEReader) Next() (SSEEvent, error) {
	var ev SSEEvent
	var data []byte
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			return SSEEvent{}, err
		}
		if line == "" {
			if !hasData {
				ev = SSEEvent{}
				continue
			}
			ev.ID = s.LastEventID
			ev.Data = data
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Event = value
		case "data":
			if hasData {
				data = append(data, '\n')
			} else {
				data = []byte{}
			}
			data = append(data, value...)
			hasData = true
			if len(data) > 16*MaxSSELineBytes {
				return SSEEvent{}, ErrSSELineTooLong
			}
		case "id":
			if !strings.ContainsRune(value, 0) {
				s.LastEventID = value
			}
		case "retry":
			if ms, err := strconv.ParseUint(value, 10, 31); err == nil {
				ev.Retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}
