package azure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/atgraph/atg/azure/azuretest"
)

// fakeSource is a source over srv with the static token and fast retries.
func fakeSource(t testing.TB, srv *azuretest.Server, mutate func(*Config)) *ResourceGraphSource {
	t.Helper()
	cfg := Config{
		TenantID: srv.Tenant.ID, ARMEndpoint: srv.URL, AccessToken: Secret(srv.Token),
		HTTPClient: srv.Client(), RetryDelay: 5 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := newResourceGraphSource(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// drain reads every row, returning the ids and the error that ended it.
func drain(src Source, table Table, sub string) ([]string, error) {
	var ids []string
	for row, err := range src.Rows(context.Background(), table, sub) {
		if err != nil {
			return ids, err
		}
		id, _ := row["id"].(string)
		ids = append(ids, id)
	}
	return ids, nil
}

func unique(t *testing.T, ids []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("row %s yielded twice", id)
		}
		seen[id] = true
	}
}

func TestRowsPagesEveryRowExactlyOnce(t *testing.T) {
	t.Parallel()
	srv := azuretest.NewServer(t, azuretest.Options{Seed: 1, Resources: 400, Subscriptions: 3})
	tn := srv.Tenant
	cases := []struct {
		table Table
		sub   string
	}{
		{TableResources, ""}, {TableResourceContainers, ""}, {TableAuthorizationResources, ""},
		{TableResources, tn.Subscriptions[0]}, {TableResourceContainers, tn.Subscriptions[1]},
		{TableAuthorizationResources, tn.Subscriptions[2]},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s", tc.table, tc.sub), func(t *testing.T) {
			t.Parallel()
			src := fakeSource(t, srv, func(c *Config) { c.PageSize = 37 })
			want := tn.Counts()[string(tc.table)]
			if tc.sub != "" {
				want = tn.CountsFor(tc.sub)[string(tc.table)]
			}
			ids, err := drain(src, tc.table, tc.sub)
			if err != nil {
				t.Fatal(err)
			}
			unique(t, ids)
			pages := int64((want + 36) / 37)
			if len(ids) != want || src.Stats().Pages != pages || src.Stats().APICalls != pages {
				t.Fatalf("rows %d (want %d), stats %+v (want %d pages and calls)", len(ids), want, src.Stats(), pages)
			}
		})
	}
}

// TestRowsNumbersAreJSONNumbers: the contract (Row) promises json.Number.
func TestRowsNumbersAreJSONNumbers(t *testing.T) {
	t.Parallel()
	srv := azuretest.NewServer(t, azuretest.Options{Resources: 23})
	for row, err := range fakeSource(t, srv, nil).Rows(context.Background(), TableResources, "") {
		if err != nil {
			t.Fatal(err)
		}
		if row["type"] == "microsoft.compute/disks" {
			n, ok := row["properties"].(map[string]any)["diskSizeGB"].(json.Number)
			if !ok || n != "128" {
				t.Fatalf("diskSizeGB = %#v, want json.Number 128", row["properties"].(map[string]any)["diskSizeGB"])
			}
			return
		}
	}
	t.Fatal("no disk row")
}

// TestRowsFiltersOtherSubscriptions: an endpoint that ignores the
// request's subscriptions still yields only the asked subscription's rows.
func TestRowsFiltersOtherSubscriptions(t *testing.T) {
	t.Parallel()
	srv := azuretest.NewServer(t, azuretest.Options{Resources: 200, IgnoreSubscriptions: true})
	sub := srv.Tenant.Subscriptions[1]
	for _, table := range []Table{TableResources, TableResourceContainers, TableAuthorizationResources} {
		ids, err := drain(fakeSource(t, srv, nil), table, sub)
		if err != nil {
			t.Fatal(err)
		}
		if want := srv.Tenant.CountsFor(sub)[string(table)]; len(ids) != want {
			t.Fatalf("%s: %d rows, want %d", table, len(ids), want)
		}
		for _, id := range ids {
			if !strings.HasPrefix(strings.ToLower(id), "/subscriptions/"+sub) {
				t.Fatalf("%s: row %s of another subscription", table, id)
			}
		}
	}
}

func TestRowsQueryStartsWithTableAndPagesAt1000(t *testing.T) {
	t.Parallel()
	srv := azuretest.NewServer(t, azuretest.Options{Resources: 2300})
	src := fakeSource(t, srv, nil)
	if _, err := drain(src, TableResources, ""); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 pages of 1000", len(reqs))
	}
	for i, r := range reqs {
		if !strings.HasPrefix(r.Query, "Resources") || r.Top != 1000 || (i > 0) != (r.SkipToken != "") {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
}

func TestRowsHonoursRetryAfterAndQuota(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		fault func(*azuretest.Server)
		calls int64
	}{
		{"429 Retry-After", func(s *azuretest.Server) { s.ThrottleCall(2, time.Second) }, 4},
		{"quota 0", func(s *azuretest.Server) { s.ExhaustQuotaOnCall(1, time.Second) }, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := azuretest.NewServer(t, azuretest.Options{Resources: 230})
			tc.fault(srv)
			src := fakeSource(t, srv, func(c *Config) { c.PageSize = 100 })
			ids, err := drain(src, TableResources, "")
			if err != nil {
				t.Fatal(err)
			}
			st := src.Stats()
			if len(ids) != 230 || st.APICalls != tc.calls || st.Pages != 3 || st.Throttled != 1 || st.ThrottledFor < 900*time.Millisecond {
				t.Fatalf("rows %d, stats %+v", len(ids), st)
			}
			reqs := srv.Requests()
			// The call after the throttling reply went out a second later.
			if gap := reqs[1].Time.Sub(reqs[0].Time); tc.name == "quota 0" && gap < 900*time.Millisecond {
				t.Fatalf("second call %v after the quota-0 reply, want >= 1s", gap)
			}
			if gap := reqs[2].Time.Sub(reqs[1].Time); tc.name != "quota 0" && gap < 900*time.Millisecond {
				t.Fatalf("retry %v after the 429, want >= 1s", gap)
			}
		})
	}
}

func TestRowsRetriesTransientOnly(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		fault   func(*azuretest.Server)
		token   string
		wantErr error
		status  int
		calls   int64
	}{
		{"503 then 500 retried", func(s *azuretest.Server) { s.FailCall(2, 503); s.FailCall(3, 500) }, "", nil, 0, 5},
		{"timeout retried", func(s *azuretest.Server) { s.SlowCall(1, time.Minute) }, "", nil, 0, 4},
		{"400 not retried", func(s *azuretest.Server) { s.FailCall(1, 400) }, "", ErrRequest, 400, 1},
		{"403 not retried", func(s *azuretest.Server) { s.FailCall(2, 403) }, "", ErrRequest, 403, 2},
		{"401 bad token not retried", func(*azuretest.Server) {}, "forged-token-value", ErrRequest, 401, 1},
		{"503 forever gives up", func(s *azuretest.Server) {
			for i := 1; i <= 10; i++ {
				s.FailCall(i, 503)
			}
		}, "", ErrUnavailable, 503, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := azuretest.NewServer(t, azuretest.Options{Resources: 230})
			tc.fault(srv)
			src := fakeSource(t, srv, func(c *Config) {
				c.PageSize = 100
				c.TryTimeout = 2 * time.Second
				if tc.token != "" {
					c.AccessToken = Secret(tc.token)
				}
			})
			ids, err := drain(src, TableResources, "")
			if st := src.Stats(); st.APICalls != tc.calls || int64(srv.Calls()) != tc.calls {
				t.Fatalf("stats %+v, server saw %d calls; want %d", st, srv.Calls(), tc.calls)
			}
			if tc.wantErr == nil {
				if err != nil || len(ids) != 230 {
					t.Fatalf("rows %d, err %v", len(ids), err)
				}
				return
			}
			var re *RequestError
			if !errors.Is(err, tc.wantErr) || !errors.As(err, &re) || re.Status != tc.status {
				t.Fatalf("err %v, want %v with status %d", err, tc.wantErr, tc.status)
			}
			if tc.token != "" && (strings.Contains(err.Error(), tc.token) || !strings.Contains(err.Error(), "AZURE_ACCESS_TOKEN")) {
				t.Fatalf("401 error %q: must name AZURE_ACCESS_TOKEN and never hold the token", err)
			}
			if tc.status == 403 && !strings.Contains(err.Error(), "Reader") {
				t.Fatalf("403 error %q does not say what to grant", err)
			}
		})
	}
}

// TestRowsSubscriptionFailsMidway: the rows before the failure are
// yielded, then the error; another subscription reads completely.
func TestRowsSubscriptionFailsMidway(t *testing.T) {
	t.Parallel()
	srv := azuretest.NewServer(t, azuretest.Options{Resources: 460})
	bad, good := srv.Tenant.Subscriptions[0], srv.Tenant.Subscriptions[1]
	srv.FailSubscription(bad, 100, http.StatusInternalServerError)
	src := fakeSource(t, srv, func(c *Config) { c.PageSize = 50; c.MaxRetries = 2 })
	ids, err := drain(src, TableResources, bad)
	if len(ids) != 100 || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("bad subscription: %d rows, err %v; want 100 rows then ErrUnavailable", len(ids), err)
	}
	ids, err = drain(src, TableResources, good)
	if err != nil || len(ids) != srv.Tenant.CountsFor(good)[string(TableResources)] {
		t.Fatalf("good subscription: %d rows, err %v", len(ids), err)
	}
}

func TestRowsStopsWhenCallerStops(t *testing.T) {
	t.Parallel()
	srv := azuretest.NewServer(t, azuretest.Options{Resources: 460})
	src := fakeSource(t, srv, func(c *Config) { c.PageSize = 50 })
	n := 0
	for _, err := range src.Rows(context.Background(), TableResources, "") {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 60 {
			break
		}
	}
	// Page 3 may have been asked for ahead (one page of prefetch), no more.
	if c := srv.Calls(); c < 2 || c > 3 {
		t.Fatalf("%d calls after stopping at row 60 of pages of 50, want 2 or 3", c)
	}
}

func TestRowsCancelled(t *testing.T) {
	t.Parallel()
	srv := azuretest.NewServer(t, azuretest.Options{Resources: 460})
	srv.ThrottleCall(2, 30*time.Second)
	src := fakeSource(t, srv, func(c *Config) { c.PageSize = 50 })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	var last error
	for _, err := range src.Rows(ctx, TableResources, "") {
		last = err
	}
	if !errors.Is(last, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %v, want the context's error promptly", last, time.Since(start))
	}
}

// TestRowsStaysWithinTheQuota: with Resource Graph's per-user quota
// modelled (3 queries a second here), the reader waits for each reset the
// headers announce instead of running into 429s.
func TestRowsStaysWithinTheQuota(t *testing.T) {
	t.Parallel()
	srv := azuretest.NewServer(t, azuretest.Options{Resources: 460, Quota: 3, QuotaWindow: time.Second})
	src := fakeSource(t, srv, func(c *Config) { c.PageSize = 70 })
	ids, err := drain(src, TableResources, "")
	if err != nil || len(ids) != 460 {
		t.Fatalf("%d rows, err %v", len(ids), err)
	}
	for _, r := range srv.Requests() {
		if r.Status == http.StatusTooManyRequests {
			t.Fatalf("a 429 at %v: the quota headers were not honoured", r.Time)
		}
	}
	if st := src.Stats(); st.APICalls != 7 || st.Throttled < 2 {
		t.Fatalf("stats %+v, want 7 calls and at least 2 quota waits", st)
	}
}

// TestStatsForConcurrentSubscriptions: two subscriptions read at once,
// one failing part-way, each get their own figures; the totals add up.
func TestStatsForConcurrentSubscriptions(t *testing.T) {
	t.Parallel()
	srv := azuretest.NewServer(t, azuretest.Options{Resources: 460})
	good, bad := srv.Tenant.Subscriptions[0], srv.Tenant.Subscriptions[1]
	srv.FailSubscription(bad, 50, http.StatusServiceUnavailable)
	src := fakeSource(t, srv, func(c *Config) { c.PageSize = 50; c.MaxRetries = 2 })
	errs := make(chan error, 2)
	for _, sub := range []string{good, bad} {
		go func() { _, err := drain(src, TableResources, sub); errs <- err }()
	}
	e1, e2 := <-errs, <-errs
	if (e1 == nil) == (e2 == nil) || !errors.Is(errors.Join(e1, e2), ErrUnavailable) {
		t.Fatalf("errors %v / %v, want exactly one ErrUnavailable", e1, e2)
	}
	g, b, all := src.StatsFor(strings.ToUpper(good)), src.StatsFor(bad), src.Stats()
	n := int64((srv.Tenant.CountsFor(good)[string(TableResources)] + 49) / 50)
	if g.Pages != n || g.APICalls != n || b.Pages != 1 || b.APICalls != 4 || all.APICalls != g.APICalls+b.APICalls || all.Pages != g.Pages+b.Pages {
		t.Fatalf("good %+v (want %d pages and calls), bad %+v (want 1 page, 4 calls), all %+v", g, n, b, all)
	}
	if (src.StatsFor("") != Stats{}) {
		t.Fatalf("tenant-wide stats %+v without a tenant-wide read", src.StatsFor(""))
	}
}
