package auth

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestCheckKeyID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	mem := &MemoryStore{Now: func() time.Time { return now }}
	_, live, err := mem.Create(ctx, CreateOptions{ClientID: "live", Environment: Dev, Scopes: []Scope{ScopeRead}})
	mustOK(t, err)
	_, soon, err := mem.Create(ctx, CreateOptions{ClientID: "soon", Environment: Dev, TTL: time.Hour})
	mustOK(t, err)
	_, gone, err := mem.Create(ctx, CreateOptions{ClientID: "gone", Environment: Dev})
	mustOK(t, err)
	_, err = mem.Revoke(ctx, gone.ID)
	mustOK(t, err)
	_, other, err := mem.Create(ctx, CreateOptions{ClientID: "other", Environment: Production})
	mustOK(t, err)

	fs, err := OpenFileStore(ctx, filepath.Join(t.TempDir(), "keys.json"), FileStoreOptions{})
	mustOK(t, err)
	t.Cleanup(func() { fs.Close() })
	_, inFile, err := fs.Create(ctx, CreateOptions{ClientID: "file", Environment: Dev})
	mustOK(t, err)

	for name, store := range map[string]KeyStore{"memory": mem, "foreign": foreignStore{mem}, "chain": Chain{foreignStore{fs}, mem}} {
		a, err := NewAuthenticator(store, Dev)
		mustOK(t, err)
		for _, tt := range []struct {
			id     string
			client string
			want   error
		}{
			{live.ID, "live", nil},
			{soon.ID, "soon", nil},
			{gone.ID, "gone", ErrRevoked},
			{other.ID, "other", ErrWrongEnvironment},
			{"key_000000000000", "", ErrUnknownKey},
		} {
			id, err := a.CheckKeyID(ctx, tt.id)
			if !errors.Is(err, tt.want) || id.ClientID != tt.client {
				t.Errorf("%s: %s: %+v, %v; want client %q, %v", name, tt.id, id, err, tt.client, tt.want)
			}
			if err == nil && (id.KeyID != tt.id || id.Environment != Dev) {
				t.Errorf("%s: identity %+v", name, id)
			}
		}
	}
	// Expiry follows the store's clock.
	now = now.Add(2 * time.Hour)
	a, _ := NewAuthenticator(mem, Dev)
	if _, err := a.CheckKeyID(ctx, soon.ID); !errors.Is(err, ErrExpired) {
		t.Errorf("after its expiry: %v", err)
	}
	// A key revoked in the file is refused once the store has reloaded it.
	a, _ = NewAuthenticator(Chain{mem, fs}, Dev)
	if _, err := a.CheckKeyID(ctx, inFile.ID); err != nil {
		t.Fatal(err)
	}
	cli, err := OpenFileStore(ctx, fs.Path(), FileStoreOptions{})
	mustOK(t, err)
	_, err = cli.Revoke(ctx, inFile.ID)
	mustOK(t, err)
	mustOK(t, cli.Close())
	if _, err := a.CheckKeyID(ctx, inFile.ID); err != nil {
		t.Errorf("before the reload, the server's copy is as it was: %v", err)
	}
	mustOK(t, fs.Reload(ctx))
	if _, err := a.CheckKeyID(ctx, inFile.ID); !errors.Is(err, ErrRevoked) {
		t.Errorf("after the reload: %v", err)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
