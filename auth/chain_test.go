package auth

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// foreignStore is a KeyStore from outside this package: it has only the
// public methods, so a Chain must fall back to its Authenticate.
type foreignStore struct{ KeyStore }

func TestChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock()
	mem := &MemoryStore{Now: clock.Now}
	file, err := OpenFileStore(ctx, filepath.Join(t.TempDir(), "keys.json"), FileStoreOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	other := foreignStore{&MemoryStore{Now: clock.Now}}
	memKey, memRec := mustCreate(t, mem, CreateOptions{ClientID: "in-memory", Environment: Dev})
	fileKey, fileRec := mustCreate(t, file, CreateOptions{ClientID: "in-file", Environment: Dev})
	otherKey, otherRec := mustCreate(t, other, CreateOptions{ClientID: "elsewhere", Environment: Dev})
	revokedKey, revokedRec := mustCreate(t, file, CreateOptions{ClientID: "gone", Environment: Dev})
	if _, err := file.Revoke(ctx, revokedRec.ID); err != nil {
		t.Fatal(err)
	}
	unknownKey, _ := mustCreate(t, NewMemoryStore(), CreateOptions{ClientID: "nobody", Environment: Dev})

	chain := Chain{mem, file, other}
	authn, err := NewAuthenticator(chain, Dev)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		key    string
		client string
		err    error
	}{
		{"first store", memKey, memRec.ClientID, nil},
		{"second store", fileKey, fileRec.ClientID, nil},
		{"store from outside the package", otherKey, otherRec.ClientID, nil},
		{"revoked in the second store", revokedKey, revokedRec.ClientID, ErrRevoked},
		{"in no store", unknownKey, "", ErrUnknownKey},
		{"malformed", "atg_dev_nothex", "", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := chain.Authenticate(ctx, tc.key)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) || rec.ClientID != tc.client {
				t.Errorf("Chain.Authenticate = %q, %v; want %q, %v", rec.ClientID, err, tc.client, tc.err)
			}
			id, err := authn.Authenticate(ctx, tc.key)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) || id.ClientID != tc.client {
				t.Errorf("Authenticator over the chain = %q, %v; want %q, %v", id.ClientID, err, tc.client, tc.err)
			}
		})
	}

	recs, err := chain.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var clients []string
	for _, r := range recs {
		clients = append(clients, r.ClientID)
	}
	if diff := cmp.Diff([]string{"in-memory", "in-file", "gone", "elsewhere"}, clients); diff != "" {
		t.Errorf("List clients (-want +got):\n%s", diff)
	}
	if _, _, err := chain.Create(ctx, CreateOptions{ClientID: "x", Environment: Dev}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Create: %v, want ErrReadOnly", err)
	}
	if _, err := chain.Revoke(ctx, memRec.ID); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Revoke: %v, want ErrReadOnly", err)
	}
	if _, _, err := chain.Rotate(ctx, memRec.ID, 0); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Rotate: %v, want ErrReadOnly", err)
	}
	if _, err := mem.Authenticate(ctx, memKey); err != nil {
		t.Errorf("the chain's refusals changed a member: %v", err)
	}
	if empty, err := (Chain{}).List(ctx); err != nil || len(empty) != 0 || empty == nil {
		t.Errorf("empty chain List = %#v, %v; want an empty, non-nil list", empty, err)
	}
}
