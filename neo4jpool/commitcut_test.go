package neo4jpool_test

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// boltCommit is a Bolt COMMIT message as the driver frames it: a chunk of
// two bytes (struct marker with no fields, signature 0x12) and the end
// marker.
var boltCommit = []byte{0x00, 0x02, 0xB0, 0x12, 0x00, 0x00}

// commitCutter is a TCP proxy to a Bolt server that, at the cutAt-th
// COMMIT it relays (counting all connections), lets the server receive it
// but never relays the answer: it swallows the server's bytes for a while
// (so the server has committed) and then closes both sides. The client
// sees the connection break during COMMIT.
type commitCutter struct {
	ln      net.Listener
	target  string
	cutAt   int64
	commits atomic.Int64
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func newCommitCutter(t *testing.T, target string, cutAt int64) *commitCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &commitCutter{ln: ln, target: target, cutAt: cutAt}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *commitCutter) uri() string { return "bolt://" + p.ln.Addr().String() }

func (p *commitCutter) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		var cut atomic.Bool
		p.wg.Add(2)
		go func() { // client -> server, watching for COMMIT
			defer p.wg.Done()
			var tail []byte
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					window := append(tail, buf[:n]...)
					if k := int64(bytes.Count(window, boltCommit)); k > 0 {
						if total := p.commits.Add(k); total >= p.cutAt && total-k < p.cutAt {
							cut.Store(true)
						}
					}
					if _, werr := s.Write(buf[:n]); werr != nil {
						return
					}
					tail = append(tail[:0], window[max(0, len(window)-len(boltCommit)+1):]...)
				}
				if err != nil {
					_ = s.Close()
					return
				}
			}
		}()
		go func() { // server -> client, cut after the chosen COMMIT
			defer p.wg.Done()
			buf := make([]byte, 64<<10)
			for {
				n, err := s.Read(buf)
				if cut.Load() {
					time.Sleep(300 * time.Millisecond) // the server commits
					_ = c.Close()
					_ = s.Close()
					return
				}
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					_ = c.Close()
					return
				}
			}
		}()
	}
}
