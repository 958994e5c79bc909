package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// browserPage follows an operation with EventSource (no headers: the token
// in links.events authenticates) from a page on another origin, and posts
// what it saw back to its own server.
const browserPage = `<!doctype html><html><body><script>
const seen = [];
const es = new EventSource(%q);
for (const type of ["status", "progress", "log", "complete", "error"]) {
  es.addEventListener(type, (e) => {
    seen.push({type, id: e.lastEventId});
    if (type === "complete" || type === "error") {
      es.close();
      fetch("/report", {method: "POST", body: JSON.stringify(seen)});
    }
  });
}
es.onerror = () => { if (es.readyState === EventSource.CLOSED) fetch("/report", {method: "POST", body: JSON.stringify({failed: seen})}); };
</script></body></html>`

// TestBrowserEventSource runs headless Chromium: a page served from another
// origin follows an operation's events with the browser's EventSource,
// through CORS and the events token. It needs Chromium (Debian package
// chromium); .ci/run installs it. Without it the test is skipped, unless
// ATG_REQUIRE_BROWSER=1.
func TestBrowserEventSource(t *testing.T) {
	t.Parallel()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("ATG_REQUIRE_BROWSER") == "1" {
			t.Fatal("ATG_REQUIRE_BROWSER=1 but chromium is not installed")
		}
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	reports := make(chan string, 1)
	var pageURL atomic.Value // set after the API fixture exists; read by the page handler
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/report" {
			b, _ := io.ReadAll(r.Body)
			select {
			case reports <- string(b):
			default:
			}
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, browserPage, pageURL.Load())
	}))
	defer page.Close()

	f := newFixture(t, fixtureOpts{cors: []string{page.URL}})
	sub := decode[Submitted](t, f.do("POST", "/api/v1/operations", "writer", `{"type":"ticks","params":{"n":25}}`))
	eventsURL := f.srv.URL + sub.Links.Events
	pageURL.Store(eventsURL)

	// Not t.TempDir: Chromium's helper processes may still write to the
	// profile for a moment after it is killed, so its removal is retried.
	profile, err := os.MkdirTemp("", "atg-chromium-")
	must(t, err)
	t.Cleanup(func() {
		for deadline := time.Now().Add(10 * time.Second); os.RemoveAll(profile) != nil && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir="+profile, page.URL)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var report string
	select {
	case report = <-reports:
	case <-ctx.Done():
		t.Fatal("the page never reported")
	}
	var seen []struct{ Type, ID string }
	if err := json.Unmarshal([]byte(report), &seen); err != nil {
		t.Fatalf("the page's EventSource failed: %s", report)
	}
	if len(seen) != 28 || seen[0].Type != "status" || seen[len(seen)-1].Type != "complete" {
		t.Fatalf("browser saw %d events: %s", len(seen), report)
	}
	for i, ev := range seen {
		if ev.ID != fmt.Sprint(i+1) {
			t.Fatalf("event %d has id %q: %s", i, ev.ID, report)
		}
	}
	if strings.Contains(eventsURL, f.keys["writer"]) {
		t.Error("an API key went into the page's URL")
	}
}
