package atg

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// openChunked starts a chunked POST /api/v1/query on a raw connection
// (with key, unless it is ""), sending the headers and first (a prefix of
// the JSON body), and returns
// the connection for the test to trickle more or stall.
func openChunked(t *testing.T, srv *Server, key, first string) net.Conn {
	t.Helper()
	addr := strings.TrimPrefix(srv.URL(), "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	auth := ""
	if key != "" {
		auth = "Authorization: Bearer " + key + "\r\n"
	}
	fmt.Fprintf(c, "POST /api/v1/query HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n",
		addr, auth, len(first), first)
	return c
}

// readResponse reads one response from c within limit.
func readResponse(t *testing.T, c net.Conn, limit time.Duration) (*http.Response, []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(limit))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response within %s: %v", limit, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestSlowBodyIsCutAtTheIdleTimeout: a chunked body that stops sending is
// answered 408 REQUEST_TIMEOUT in the envelope after ATG_BODY_IDLE_TIMEOUT,
// not held for the 5-minute read timeout; one trickled faster than that
// (taking longer in total) is served.
func TestSlowBodyIsCutAtTheIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	srv, key, _ := testServer(t, func(s *Server) { s.Config.BodyIdleTimeout = idle })

	t.Run("stalled", func(t *testing.T) {
		t.Parallel()
		// The clock starts before the body is sent: the server's idle
		// timer cannot start earlier than that.
		start := time.Now()
		c := openChunked(t, srv, key, `{"query":`)
		resp, body := readResponse(t, c, 10*time.Second)
		took := time.Since(start)
		if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var env struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(body, &env); err != nil || env.Error.Code != "REQUEST_TIMEOUT" {
			t.Errorf("envelope %s (%v)", body, err)
		}
		if took < idle || took > idle+3*time.Second {
			t.Errorf("answered after %s, want about %s", took, idle)
		}
	})
	// A request refused before its body is read (here: no key) is answered
	// at once and its connection closed, not held while net/http waits to
	// discard the trickled body.
	t.Run("refused unread", func(t *testing.T) {
		t.Parallel()
		c := openChunked(t, srv, "", `{"query":`)
		start := time.Now()
		resp, body := readResponse(t, c, 10*time.Second)
		if resp.StatusCode != http.StatusUnauthorized || time.Since(start) > idle/2 {
			t.Errorf("%d after %s: %s", resp.StatusCode, time.Since(start), body)
		}
		_ = c.SetReadDeadline(time.Now().Add(idle / 2))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
			t.Errorf("the connection stayed open after the answer: %d, %v", n, err)
		}
	})
	t.Run("trickled within the idle timeout", func(t *testing.T) {
		t.Parallel()
		c := openChunked(t, srv, key, `{`)
		start := time.Now()
		for _, part := range []string{`"query"`, `:"RETURN`, ` 41 + 1`, ` AS n"`, `}`} {
			time.Sleep(idle / 4)
			fmt.Fprintf(c, "%x\r\n%s\r\n", len(part), part)
		}
		fmt.Fprint(c, "0\r\n\r\n")
		resp, body := readResponse(t, c, 10*time.Second)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"rows":[[42]]`) {
			t.Fatalf("%d: %s", resp.StatusCode, body)
		}
		if time.Since(start) < idle {
			t.Errorf("the body took %s, less than the idle timeout: the test proves nothing", time.Since(start))
		}
	})
}

// waitInFlight waits until srv serves n requests besides the /metrics
// request asking, then a little more for them to pass authentication.
func waitInFlight(t *testing.T, srv *Server, n int) {
	t.Helper()
	want := fmt.Sprintf("atg_http_requests_in_flight %d\n", n+1)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(srv.URL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), want) {
			time.Sleep(200 * time.Millisecond)
			return
		}
	}
	t.Fatalf("the server never had %d requests in flight", n)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestRequestsInFlightPerKey: with ATG_MAX_REQUESTS_PER_KEY 3, three slow
// requests of one key make its fourth 429 RATE_LIMITED with Retry-After,
// while another key is served; once one ends, the key is served again.
func TestRequestsInFlightPerKey(t *testing.T) {
	t.Parallel()
	const max = 3
	srv, key, admin := testServer(t, func(s *Server) {
		s.Config.MaxRequestsPerKey = max
		s.Config.BodyIdleTimeout = time.Minute
	})
	query := func(k string) (int, http.Header, []byte) {
		return rawCall(t, srv, "POST", "/api/v1/query", k, "application/json", `{"query":"RETURN 1 AS n"}`)
	}
	var slow []net.Conn
	for range max {
		slow = append(slow, openChunked(t, srv, key, `{"query":`))
	}
	// Let the server take all of them in before the key sends more, so
	// that the request refused is one of the test's, not a slow one.
	waitInFlight(t, srv, max)
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, h, body := query(key)
		if status == http.StatusTooManyRequests {
			if h.Get("Retry-After") != "1" || !strings.Contains(string(body), `"RATE_LIMITED"`) || !strings.Contains(string(body), "in flight") {
				t.Errorf("429 with Retry-After %q: %s", h.Get("Retry-After"), body)
			}
			break
		}
		if status != 200 || time.Now().After(deadline) {
			t.Fatalf("with %d slow requests open: %d %s", max, status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A slow request past the cap is refused at once, without its body.
	extra := openChunked(t, srv, key, `{"query":`)
	start := time.Now()
	if resp, body := readResponse(t, extra, 10*time.Second); resp.StatusCode != http.StatusTooManyRequests || time.Since(start) > 3*time.Second {
		t.Errorf("slow request past the cap: %d after %s: %s", resp.StatusCode, time.Since(start), body)
	}
	if status, _, body := query(admin); status != 200 {
		t.Errorf("another key: %d %s", status, body)
	}
	slow[0].Close()
	deadline = time.Now().Add(5 * time.Second)
	for {
		status, _, body := query(key)
		if status == 200 {
			break
		}
		if status != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after one slow request ended: %d %s", status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
