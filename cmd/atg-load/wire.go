package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// wireError wraps an error a countingTransport already recorded, so the
// caller does not count it twice. It unwraps to the original error, so
// net.Error checks (and the client's retry decisions) are unchanged.
type wireError struct {
	// err is the transport's error.
	err error
}

// Error implements error.
func (e *wireError) Error() string { return e.err.Error() }

// Unwrap returns the transport's error.
func (e *wireError) Unwrap() error { return e.err }

// countingTransport is an http.RoundTripper that records every HTTP attempt
// (status, or the transport failure) in a recorder, by route. It also
// watches event-stream bodies for reads that fail mid-stream.
type countingTransport struct {
	// base sends the requests; rec records them.
	base http.RoundTripper
	rec  *recorder
}

// RoundTrip implements http.RoundTripper.
func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := routeOf(req.Method, req.URL.Path)
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		t.rec.wireFailure(rt, err)
		return nil, &wireError{err: err}
	}
	code := ""
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusTooManyRequests {
		// Peek at the error envelope's code; give the client the same bytes.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		var env struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(b, &env) == nil {
			code = env.Error.Code
		}
	}
	t.rec.wire(rt, resp.StatusCode, code)
	if rt == routeEvents && resp.StatusCode == http.StatusOK {
		resp.Body = &watchedBody{ReadCloser: resp.Body, rec: t.rec}
	}
	return resp, nil
}

// watchedBody records a read error of an event stream that nobody closed on
// purpose (a connection reset, a truncated chunk).
type watchedBody struct {
	io.ReadCloser
	// rec records a broken stream.
	rec *recorder
	// mu guards closed (Close was called) and failed (already reported).
	mu     sync.Mutex
	closed bool
	failed bool
}

// Read implements io.Reader.
func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	// context.Canceled is the client closing the stream on purpose
	// (transport.EventStream.Close cancels the request before the body is
	// closed), not a broken stream.
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) {
		b.mu.Lock()
		report := !b.closed && !b.failed
		b.failed = true
		b.mu.Unlock()
		if report {
			b.rec.streamBroken(err)
		}
	}
	return n, err
}

// Close implements io.Closer.
func (b *watchedBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return b.ReadCloser.Close()
}

// newHTTPClient returns an HTTP client of its own (one connection pool per
// simulated client, as separate programs would have) that records into rec.
func newHTTPClient(rec *recorder) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          32,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
	}
	return &http.Client{Transport: &countingTransport{base: tr, rec: rec}}
}

// closeIdle closes the idle connections of a client made by newHTTPClient.
func closeIdle(hc *http.Client) {
	if ct, ok := hc.Transport.(*countingTransport); ok {
		if tr, ok := ct.base.(*http.Transport); ok {
			tr.CloseIdleConnections()
		}
	}
}
