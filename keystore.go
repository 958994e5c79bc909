package atg

import (
	"context"
	"errors"
	"time"

	"github.com/atgraph/atg/auth"
)

// keyChain is the server's key store when keys come from several places:
// ATG_API_KEYS (in memory), ATG_KEYS_FILE (a FileStore), a store given to
// the Server, an ephemeral dev key. Authenticate tries each store in order.
// Management calls (which the server never makes: `atg-server keys` works on
// the file) go to the last store.
type keyChain []auth.KeyStore

// store returns the only store itself (so the authenticator can use its
// fast path), or the chain.
func (c keyChain) store() auth.KeyStore {
	if len(c) == 1 {
		return c[0]
	}
	return c
}

var _ auth.KeyStore = keyChain(nil)

func (c keyChain) Authenticate(ctx context.Context, key string) (auth.Record, error) {
	for _, s := range c {
		rec, err := s.Authenticate(ctx, key)
		if errors.Is(err, auth.ErrUnknownKey) {
			continue
		}
		return rec, err
	}
	return auth.Record{}, auth.ErrUnknownKey
}

func (c keyChain) List(ctx context.Context) ([]auth.Record, error) {
	var out []auth.Record
	for _, s := range c {
		recs, err := s.List(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

func (c keyChain) managed() auth.KeyStore { return c[len(c)-1] }

func (c keyChain) Create(ctx context.Context, opts auth.CreateOptions) (string, auth.Record, error) {
	return c.managed().Create(ctx, opts)
}

func (c keyChain) Revoke(ctx context.Context, id string) (auth.Record, error) {
	return c.managed().Revoke(ctx, id)
}

func (c keyChain) Rotate(ctx context.Context, id string, grace time.Duration) (string, auth.Record, error) {
	return c.managed().Rotate(ctx, id, grace)
}
