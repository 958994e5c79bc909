package atg

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"strconv"

	"github.com/atgraph/atg/transport"
)

// goErrorHeaders follow the status line of the replies net/http's server
// writes by itself, in plain text, to requests it could not parse (before
// any handler runs). Its ordinary responses always carry a Date header
// there instead.
const goErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// envelopeListener hands out connections that turn net/http's own
// plain-text 431 and 400 replies into the API's JSON error envelope, so
// that every answer of the server has the same shape. It is used for
// plain HTTP; under TLS the server's writes are encrypted before they reach
// the connection, and those replies stay as net/http writes them.
type envelopeListener struct{ net.Listener }

func (l envelopeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &envelopeConn{Conn: c}, nil
}

// envelopeConn rewrites one Write that is exactly a net/http error reply.
type envelopeConn struct{ net.Conn }

// CloseWrite passes half-closes through (net/http uses them after a 431).
func (c *envelopeConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *envelopeConn) Write(b []byte) (int, error) {
	if out, ok := envelopeReply(b); ok {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// envelopeReply returns the JSON form of b if b is a whole net/http
// plain-text 431 or 400 reply.
func envelopeReply(b []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(b, []byte("HTTP/1.1 "))
	if !ok || len(rest) < 4 {
		return nil, false
	}
	statusLine, body, ok := bytes.Cut(rest, []byte(goErrorHeaders))
	if !ok || bytes.Contains(statusLine, []byte("\r\n")) {
		return nil, false
	}
	var code, message string
	switch string(statusLine[:4]) {
	case "431 ":
		code, message = transport.CodeHeaderTooLarge, "request line and headers are too large"
	case "400 ":
		code, message = transport.CodeValidation, "malformed HTTP request"
		if _, why, ok := bytes.Cut(body, []byte(": ")); ok && len(why) < 200 {
			message += ": " + string(why)
		}
	default:
		return nil, false
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	requestID := hex.EncodeToString(id[:])
	env, err := json.Marshal(map[string]any{"error": transport.Error{Code: code, Message: message, RequestID: requestID}})
	if err != nil {
		return nil, false
	}
	env = append(env, '\n')
	var out bytes.Buffer
	out.WriteString("HTTP/1.1 ")
	out.Write(statusLine)
	out.WriteString("\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n")
	out.WriteString(transport.HeaderRequestID + ": " + requestID + "\r\nContent-Length: " + strconv.Itoa(len(env)) + "\r\n\r\n")
	out.Write(env)
	return out.Bytes(), true
}
