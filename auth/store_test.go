package auth

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// storeKinds lists the KeyStore implementations; every conformance test runs
// against each.
var storeKinds = []struct {
	name string
	open func(t *testing.T, clock *fakeClock) KeyStore
}{
	{"memory", func(t *testing.T, clock *fakeClock) KeyStore {
		return &MemoryStore{Now: clock.Now}
	}},
	{"file", func(t *testing.T, clock *fakeClock) KeyStore {
		path := filepath.Join(t.TempDir(), "keys.json")
		s, err := OpenFileStore(context.Background(), path, FileStoreOptions{Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}},
}

// forEachStore runs f as a parallel subtest for every store kind.
func forEachStore(t *testing.T, f func(t *testing.T, s KeyStore, clock *fakeClock)) {
	t.Helper()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			f(t, kind.open(t, clock), clock)
		})
	}
}

func mustCreate(t *testing.T, s KeyStore, opts CreateOptions) (string, Record) {
	t.Helper()
	key, rec, err := s.Create(context.Background(), opts)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return key, rec
}

func TestStoreAuthenticateOutcomes(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s KeyStore, clock *fakeClock) {
		ctx := context.Background()
		start := clock.Now()
		forever, foreverRec := mustCreate(t, s, CreateOptions{ClientID: "forever", Environment: Dev})
		daily, dailyRec := mustCreate(t, s, CreateOptions{ClientID: "daily", Environment: Dev, TTL: 24 * time.Hour})
		revoked, revokedRec := mustCreate(t, s, CreateOptions{ClientID: "revoked", Environment: Dev})
		if _, err := s.Revoke(ctx, revokedRec.ID); err != nil {
			t.Fatal(err)
		}
		if foreverRec.ExpiresAt != nil {
			t.Errorf("never-expiring key has expires_at %v", foreverRec.ExpiresAt)
		}
		if want := start.Add(24 * time.Hour); dailyRec.ExpiresAt == nil || !dailyRec.ExpiresAt.Equal(want) {
			t.Errorf("expires_at = %v, want %v", dailyRec.ExpiresAt, want)
		}

		check := func(name, key string, wantErr error, wantID string) {
			t.Helper()
			rec, err := s.Authenticate(ctx, key)
			if !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
				t.Errorf("%s: Authenticate error = %v, want %v", name, err, wantErr)
			}
			if rec.ID != wantID {
				t.Errorf("%s: record ID = %q, want %q", name, rec.ID, wantID)
			}
			if err != nil && strings.Contains(err.Error(), key) {
				t.Errorf("%s: error contains the key", name)
			}
		}
		check("never-expiring", forever, nil, foreverRec.ID)
		check("valid until tomorrow", daily, nil, dailyRec.ID)
		check("revoked", revoked, ErrRevoked, revokedRec.ID)
		check("unknown", mustGenerate(t, Dev), ErrUnknownKey, "")
		check("malformed", "atg_dev_short", ErrMalformed, "")
		check("upper-case twin of a valid key", strings.ToUpper(daily[:8])+daily[8:], ErrMalformed, "")

		clock.Advance(24 * time.Hour) // exactly at expires_at: still valid (strict)
		check("at expires_at", daily, nil, dailyRec.ID)
		clock.Advance(time.Nanosecond)
		check("just after expires_at", daily, ErrExpired, dailyRec.ID)
		clock.Advance(24 * time.Hour) // expired by a day
		check("expired by one day", daily, ErrExpired, dailyRec.ID)
		clock.Advance(100 * 365 * 24 * time.Hour)
		check("never-expiring after 100 years", forever, nil, foreverRec.ID)
		check("revoked stays revoked", revoked, ErrRevoked, revokedRec.ID)
	})
}

func TestStoreRotate(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s KeyStore, clock *fakeClock) {
		ctx := context.Background()
		oldKey, oldRec := mustCreate(t, s, CreateOptions{ClientID: "team-a", Environment: Integration, Scopes: []Scope{ScopeAdmin, ScopeRead}, TTL: 30 * 24 * time.Hour})
		clock.Advance(time.Hour)
		rotatedAt := clock.Now()
		newKey, newRec, err := s.Rotate(ctx, oldRec.ID, 24*time.Hour)
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		if newKey == oldKey || newRec.ID == oldRec.ID {
			t.Fatal("rotation reused the key or the ID")
		}
		want := Record{
			ID: newRec.ID, ClientID: "team-a", Environment: Integration, Scopes: []Scope{ScopeRead, ScopeAdmin},
			CreatedAt: rotatedAt, ExpiresAt: timePtr(rotatedAt.Add(30 * 24 * time.Hour)),
		}
		if diff := cmp.Diff(want, newRec); diff != "" {
			t.Errorf("new record (-want +got):\n%s", diff)
		}
		recs, _ := s.List(ctx)
		byID := map[string]Record{}
		for _, r := range recs {
			byID[r.ID] = r
		}
		if got := byID[oldRec.ID].ExpiresAt; got == nil || !got.Equal(rotatedAt.Add(24*time.Hour)) {
			t.Errorf("old expires_at = %v, want now+grace %v", got, rotatedAt.Add(24*time.Hour))
		}

		clock.Advance(23 * time.Hour) // within the grace period
		if _, err := s.Authenticate(ctx, oldKey); err != nil {
			t.Errorf("old key during grace: %v", err)
		}
		if _, err := s.Authenticate(ctx, newKey); err != nil {
			t.Errorf("new key: %v", err)
		}
		clock.Advance(2 * time.Hour) // past the grace period
		if _, err := s.Authenticate(ctx, oldKey); !errors.Is(err, ErrExpired) {
			t.Errorf("old key after grace: %v, want ErrExpired", err)
		}
		if _, err := s.Authenticate(ctx, newKey); err != nil {
			t.Errorf("new key after grace: %v", err)
		}

		// Rotating an expired or revoked key is refused; so is an unknown ID or a negative grace.
		if _, _, err := s.Rotate(ctx, oldRec.ID, time.Hour); !errors.Is(err, ErrExpired) {
			t.Errorf("rotate expired: %v, want ErrExpired", err)
		}
		if _, err := s.Revoke(ctx, newRec.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Rotate(ctx, newRec.ID, time.Hour); !errors.Is(err, ErrRevoked) {
			t.Errorf("rotate revoked: %v, want ErrRevoked", err)
		}
		if _, _, err := s.Rotate(ctx, "key_000000000000", time.Hour); !errors.Is(err, ErrNotFound) {
			t.Errorf("rotate unknown: %v, want ErrNotFound", err)
		}
		_, third := mustCreate(t, s, CreateOptions{ClientID: "team-b", Environment: Integration})
		if _, _, err := s.Rotate(ctx, third.ID, -time.Second); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("negative grace: %v, want ErrInvalidRecord", err)
		}
	})
}

func TestStoreRotateKeepsEarlierExpiry(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s KeyStore, clock *fakeClock) {
		ctx := context.Background()
		_, old := mustCreate(t, s, CreateOptions{ClientID: "c", Environment: Dev, TTL: time.Hour})
		_, fresh, err := s.Rotate(ctx, old.ID, 7*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		recs, _ := s.List(ctx)
		for _, r := range recs {
			if r.ID == old.ID && !r.ExpiresAt.Equal(*old.ExpiresAt) {
				t.Errorf("old expires_at moved from %v to %v; must never get later", old.ExpiresAt, r.ExpiresAt)
			}
		}
		// A never-expiring key rotates into a never-expiring key.
		_, forever := mustCreate(t, s, CreateOptions{ClientID: "c", Environment: Dev})
		_, next, err := s.Rotate(ctx, forever.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if next.ExpiresAt != nil {
			t.Errorf("rotated never-expiring key has expires_at %v", next.ExpiresAt)
		}
		if fresh.ExpiresAt == nil || !fresh.ExpiresAt.Equal(clock.Now().Add(time.Hour)) {
			t.Errorf("new key lifetime: expires_at %v, want now+1h", fresh.ExpiresAt)
		}
	})
}

func TestStoreRevokeAndList(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s KeyStore, clock *fakeClock) {
		ctx := context.Background()
		if recs, err := s.List(ctx); err != nil || len(recs) != 0 {
			t.Fatalf("empty store List = %v, %v", recs, err)
		}
		_, a := mustCreate(t, s, CreateOptions{ClientID: "a", Environment: Dev})
		clock.Advance(time.Second)
		_, b := mustCreate(t, s, CreateOptions{ClientID: "b", Environment: Production, Scopes: []Scope{ScopeRead}})
		clock.Advance(time.Second)
		revokedAt := clock.Now()
		rb, err := s.Revoke(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rb.RevokedAt == nil || !rb.RevokedAt.Equal(revokedAt) {
			t.Errorf("revoked_at = %v, want %v", rb.RevokedAt, revokedAt)
		}
		clock.Advance(time.Hour)
		again, err := s.Revoke(ctx, b.ID)
		if err != nil || !again.RevokedAt.Equal(revokedAt) {
			t.Errorf("second Revoke = %v, %v; want the first revocation time kept", again.RevokedAt, err)
		}
		if _, err := s.Revoke(ctx, "key_nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Revoke unknown: %v, want ErrNotFound", err)
		}
		recs, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []Record{a, rb}
		if diff := cmp.Diff(want, recs); diff != "" {
			t.Errorf("List (-want +got):\n%s", diff)
		}
		if got := []string{recs[0].Status(clock.Now()), recs[1].Status(clock.Now())}; !cmp.Equal(got, []string{StatusActive, StatusRevoked}) {
			t.Errorf("statuses = %v", got)
		}
		// Returned records are copies.
		recs[0].Scopes[0] = ScopeAdmin
		recs2, _ := s.List(ctx)
		if recs2[0].Scopes[0] != ScopeRead {
			t.Error("modifying a listed record changed the store")
		}
	})
}

func TestStoreListOrder(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s KeyStore, clock *fakeClock) {
		ctx := context.Background()
		var want []string
		for i := range 8 { // all in the same second
			_, rec := mustCreate(t, s, CreateOptions{ClientID: fmt.Sprintf("c%d", i), Environment: Dev})
			want = append(want, rec.ID)
		}
		clock.Advance(-time.Hour)
		_, older := mustCreate(t, s, CreateOptions{ClientID: "older", Environment: Dev})
		want = append([]string{older.ID}, want...)
		if _, err := s.Revoke(ctx, want[3]); err != nil {
			t.Fatal(err)
		}
		check := func(s KeyStore) {
			t.Helper()
			recs, _ := s.List(ctx)
			var got []string
			for _, r := range recs {
				got = append(got, r.ID)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("List order (-want +got):\n%s", diff)
			}
		}
		check(s)
		if fs, ok := s.(*FileStore); ok {
			check(openFileStore(t, fs.Path(), FileStoreOptions{}))
		}
	})
}

func TestStoreCreateValidation(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s KeyStore, clock *fakeClock) {
		now := clock.Now()
		tests := []struct {
			name string
			opts CreateOptions
			want error
		}{
			{"no client", CreateOptions{Environment: Dev}, ErrInvalidRecord},
			{"client with space", CreateOptions{ClientID: "a b", Environment: Dev}, ErrInvalidRecord},
			{"client too long", CreateOptions{ClientID: strings.Repeat("a", 129), Environment: Dev}, ErrInvalidRecord},
			{"no environment", CreateOptions{ClientID: "c"}, ErrInvalidEnvironment},
			{"prod", CreateOptions{ClientID: "c", Environment: "prod"}, ErrInvalidEnvironment},
			{"bad scope", CreateOptions{ClientID: "c", Environment: Dev, Scopes: []Scope{"root"}}, ErrInvalidScope},
			{"expiry in the past", CreateOptions{ClientID: "c", Environment: Dev, ExpiresAt: now.Add(-time.Second)}, ErrInvalidRecord},
			{"expiry now", CreateOptions{ClientID: "c", Environment: Dev, ExpiresAt: now}, ErrInvalidRecord},
			{"negative TTL", CreateOptions{ClientID: "c", Environment: Dev, TTL: -time.Hour}, ErrInvalidRecord},
			{"both expiries", CreateOptions{ClientID: "c", Environment: Dev, TTL: time.Hour, ExpiresAt: now.Add(time.Hour)}, ErrInvalidRecord},
		}
		for _, tt := range tests {
			if _, _, err := s.Create(context.Background(), tt.opts); !errors.Is(err, tt.want) {
				t.Errorf("%s: error = %v, want %v", tt.name, err, tt.want)
			}
		}
		key, rec := mustCreate(t, s, CreateOptions{ClientID: "ok.client@x:1_-", Environment: Dev, ExpiresAt: now.Add(time.Hour)})
		if rec.Environment != Dev || !cmp.Equal(rec.Scopes, []Scope{ScopeRead, ScopeWrite}) || !strings.HasPrefix(key, "atg_dev_") {
			t.Errorf("record %+v", rec)
		}
		if !strings.HasPrefix(rec.ID, "key_") || len(rec.ID) != 16 || strings.Contains(key, rec.ID[4:]) {
			t.Errorf("record ID %q: want key_ + 12 hex, unrelated to the key", rec.ID)
		}
		if recs, _ := s.List(context.Background()); len(recs) != 1 {
			t.Errorf("%d records after failed creates, want 1", len(recs))
		}
	})
}

func TestStoreLastUsedThrottled(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s KeyStore, clock *fakeClock) {
		ctx := context.Background()
		key, rec := mustCreate(t, s, CreateOptions{ClientID: "c", Environment: Dev})
		if rec.LastUsedAt != nil {
			t.Fatalf("new key has last_used_at %v", rec.LastUsedAt)
		}
		first := clock.Now()
		lastUsed := func() time.Time {
			t.Helper()
			r, err := s.Authenticate(ctx, key)
			if err != nil || r.LastUsedAt == nil {
				t.Fatalf("Authenticate = %+v, %v", r, err)
			}
			return *r.LastUsedAt
		}
		if got := lastUsed(); !got.Equal(first) {
			t.Errorf("last_used_at = %v, want %v", got, first)
		}
		clock.Advance(59 * time.Second)
		if got := lastUsed(); !got.Equal(first) {
			t.Errorf("after 59s last_used_at = %v, want unchanged %v", got, first)
		}
		clock.Advance(time.Second)
		if got := lastUsed(); !got.Equal(clock.Now()) {
			t.Errorf("after 60s last_used_at = %v, want %v", got, clock.Now())
		}
		recs, _ := s.List(ctx)
		if recs[0].LastUsedAt == nil || !recs[0].LastUsedAt.Equal(clock.Now()) {
			t.Errorf("List last_used_at = %v", recs[0].LastUsedAt)
		}
	})
}

func TestStoreConcurrent(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s KeyStore, clock *fakeClock) {
		ctx := context.Background()
		keys := make([]string, 5)
		for i := range keys {
			keys[i], _ = mustCreate(t, s, CreateOptions{ClientID: fmt.Sprintf("c%d", i), Environment: Dev})
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 200 {
					if _, err := s.Authenticate(ctx, keys[(g+i)%len(keys)]); err != nil {
						t.Errorf("Authenticate: %v", err)
						return
					}
					if i%50 == 0 {
						clock.Advance(time.Minute)
					}
				}
			})
		}
		for i := range 4 {
			wg.Go(func() {
				if _, _, err := s.Create(ctx, CreateOptions{ClientID: fmt.Sprintf("new%d", i), Environment: Dev}); err != nil {
					t.Errorf("Create: %v", err)
				}
				if _, err := s.List(ctx); err != nil {
					t.Errorf("List: %v", err)
				}
			})
		}
		wg.Wait()
		recs, _ := s.List(ctx)
		if len(recs) != 9 {
			t.Errorf("%d records, want 9", len(recs))
		}
	})
}

func TestNewMemoryStoreFromKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	keys := []string{mustGenerate(t, Dev), mustGenerate(t, Production), mustGenerate(t, Dev)}
	s, err := NewMemoryStoreFromKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, key := range keys {
		rec, err := s.Authenticate(ctx, key)
		if err != nil {
			t.Fatalf("key %d: %v", i+1, err)
		}
		env, _ := ParseKey(key)
		want := Record{ClientID: fmt.Sprintf("env-key-%d", i+1), Environment: env, Scopes: []Scope{ScopeRead, ScopeWrite}}
		if diff := cmp.Diff(want, rec, cmpopts.IgnoreFields(Record{}, "ID", "CreatedAt", "LastUsedAt")); diff != "" {
			t.Errorf("key %d (-want +got):\n%s", i+1, diff)
		}
		if !strings.HasPrefix(rec.ID, "key_") {
			t.Errorf("ID %q", rec.ID)
		}
	}
	bad := mustGenerate(t, Dev)[:70] + "ZZ"
	tests := []struct {
		name string
		keys []string
		want string
	}{
		{"malformed second", []string{keys[0], bad, keys[1]}, "API key 2 of 3: invalid format: hex portion contains non-hexadecimal characters"},
		{"empty first", []string{""}, "API key 1 of 1: API key is required"},
		{"duplicate", []string{keys[0], keys[1], keys[0]}, "API key 3 of 3"},
	}
	for _, tt := range tests {
		_, err := NewMemoryStoreFromKeys(tt.keys)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want prefix %q", tt.name, err, tt.want)
		}
		for _, k := range tt.keys {
			if k != "" && err != nil && strings.Contains(err.Error(), k) {
				t.Errorf("%s: error contains a key", tt.name)
			}
		}
	}
	var zero MemoryStore
	if _, err := zero.Authenticate(ctx, keys[0]); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("zero MemoryStore: %v, want ErrUnknownKey", err)
	}
	if recs, err := zero.List(ctx); err != nil || recs == nil || len(recs) != 0 {
		t.Errorf("zero MemoryStore List = %#v, %v", recs, err)
	}
}
