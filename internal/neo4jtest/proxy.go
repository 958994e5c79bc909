package neo4jtest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Mode is how a running Proxy treats new connections.
type Mode int32

const (
	// Forward relays new connections to the target.
	Forward Mode = iota
	// Reject accepts new connections and closes them at once (the client
	// sees EOF during the Bolt handshake).
	Reject
)

// Proxy is a TCP proxy on 127.0.0.1 in front of a target address, for
// fault injection: Stop makes the address refuse connections (as a stopped
// server does) and cuts the open ones, Start listens again on the same
// address, SetMode(Reject) makes it accept and drop connections, Cut drops
// the open connections only.
type Proxy struct {
	target string
	addr   string
	mode   atomic.Int32

	accepted atomic.Int64

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy starts a proxy to target (host:port) on a free local port, in
// Forward mode. It is stopped when tb ends.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("neo4jtest: proxy listen: %v", err)
	}
	p := &Proxy{target: target, addr: ln.Addr().String(), conns: make(map[net.Conn]struct{})}
	p.serve(ln)
	tb.Cleanup(func() {
		p.Stop()
		p.wg.Wait()
	})
	return p
}

// Addr returns the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr }

// URI returns scheme://Addr(), for example p.URI("bolt").
func (p *Proxy) URI(scheme string) string { return scheme + "://" + p.addr }

// Accepted returns how many connections the proxy accepted, in any mode.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// SetMode switches how new connections are treated.
func (p *Proxy) SetMode(m Mode) { p.mode.Store(int32(m)) }

// Stop closes the listener (new connections are refused) and cuts every
// open connection. It is idempotent.
func (p *Proxy) Stop() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	p.Cut()
}

// Start listens again on the same address after Stop.
func (p *Proxy) Start() error {
	p.mu.Lock()
	running := p.ln != nil
	p.mu.Unlock()
	if running {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.serve(ln)
	return nil
}

// Cut closes every open connection through the proxy.
func (p *Proxy) Cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = make(map[net.Conn]struct{})
	p.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			if Mode(p.mode.Load()) == Reject {
				_ = c.Close()
				continue
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.relay(c)
			}()
		}
	}()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) relay(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	if !p.track(client) || !p.track(server) {
		_ = client.Close()
		_ = server.Close()
		return
	}
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src) // errors mean the connection was cut: expected here
		_ = dst.Close()
		_ = src.Close()
	}
	wg.Add(2)
	go pipe(server, client)
	go pipe(client, server)
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}
