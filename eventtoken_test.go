package atg

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// TestEventTokenEndsWithItsRevokedKey replays issue 9's attack on a real
// server with a keys file: the token of links.events stops working once
// its key is revoked and the file reloaded (SIGHUP does that), and a
// stream open with it ends; another key's token is not affected.
func TestEventTokenEndsWithItsRevokedKey(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	ctx := context.Background()
	keysFile := filepath.Join(t.TempDir(), "keys.json")
	cli, err := auth.OpenFileStore(ctx, keysFile, auth.FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	doomed, doomedRec, err := cli.Create(ctx, auth.CreateOptions{ClientID: "doomed", Environment: auth.Dev})
	if err != nil {
		t.Fatal(err)
	}
	kept, _, err := cli.Create(ctx, auth.CreateOptions{ClientID: "kept", Environment: auth.Dev})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	db := neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}
	srv := startServer(t, db, nil, func(srv *Server) {
		srv.Config.KeysFile = keysFile
		srv.Types = []operations.Type{{Name: "hold", Run: func(ctx context.Context, _ json.RawMessage, _ operations.Reporter) (any, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, ctx.Err()
		}}}
	})
	eventsURL := func(key string) string {
		status, body := call(t, srv, "POST", "/api/v1/operations", key, map[string]any{"type": "hold"})
		var op transport.Submitted
		if err := json.Unmarshal(body, &op); status != 202 || err != nil {
			t.Fatalf("submit: %d %s", status, body)
		}
		return srv.URL() + op.Links.Events
	}
	get := func(url string) *http.Response {
		resp, err := http.Get(url) // no Authorization: the token alone
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	doomedURL, keptURL := eventsURL(doomed), eventsURL(kept)
	open := get(doomedURL)
	if open.StatusCode != 200 {
		t.Fatalf("token stream: %d", open.StatusCode)
	}
	if _, err := cli.Revoke(ctx, doomedRec.ID); err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if resp := get(doomedURL); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("token of a revoked key after reload: %d, want 401", resp.StatusCode)
	}
	if resp := get(keptURL); resp.StatusCode != 200 {
		t.Errorf("token of a valid key: %d, want 200", resp.StatusCode)
	}
	ended := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, open.Body)
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(transport.DefaultEventTokenRecheck + 5*time.Second):
		t.Error("the stream opened with the revoked key's token stayed open")
		open.Body.Close()
	}
}
