package atg

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// This file is the wiring card of the root package: a Server serves the
// HTTP API with a KeyStore's keys, a Client calls it (or runs the same
// operations in this process), and the types below let callers do the
// common things with package atg alone.

// KeyStore holds API keys by digest, never the keys themselves
// (auth.KeyStore). Give one to Server.KeyStore, or let the server build
// one from ATG_API_KEYS and ATG_KEYS_FILE.
type KeyStore = auth.KeyStore

// NewMemoryKeyStore returns an empty KeyStore in memory: keys created in it
// last as long as the process.
func NewMemoryKeyStore() *auth.MemoryStore { return auth.NewMemoryStore() }

// OpenKeyStoreFile opens the key file at path, in the format `atg-server
// keys` writes (a missing file is an empty store, created mode 0600 by the
// first change; every change locks the file against other writers). Close
// it when done. A server given it reloads it on SIGHUP.
func OpenKeyStoreFile(ctx context.Context, path string) (*auth.FileStore, error) {
	return auth.OpenFileStore(ctx, path, auth.FileStoreOptions{})
}

// CreateKeyOptions say what KeyStore.Create makes: client, environment,
// scopes (default read and write) and expiry.
type CreateKeyOptions = auth.CreateOptions

// Environment names a deployment stage: Dev, Integration or Production. A
// key works only in the environment it was made for.
type Environment = auth.Environment

// The environments.
const (
	Dev         = auth.Dev
	Integration = auth.Integration
	Production  = auth.Production
)

// Scope is what an API key may do: ScopeRead, ScopeWrite or ScopeAdmin.
type Scope = auth.Scope

// The scopes.
const (
	ScopeRead  = auth.ScopeRead
	ScopeWrite = auth.ScopeWrite
	ScopeAdmin = auth.ScopeAdmin
)

// Node is one node of an import: id, labels and properties.
type Node = neo4jpool.Node

// Relationship is one relationship of an import: type, from and to (node
// ids) and properties.
type Relationship = neo4jpool.Relationship

// ImportResult is what an import wrote: nodes, relationships, chunks.
type ImportResult = neo4jpool.ImportResult

// Progress is a progress report of a running operation.
type Progress = operations.Progress

// QueryRequest is a Cypher query for Client.Query.
type QueryRequest = transport.QueryRequest

// QueryResponse is the result of Client.Query.
type QueryResponse = transport.QueryResponse

// Import MERGEs g (nodes first, then relationships, in committed chunks of
// g.ChunkSize, 0 meaning the default) through the built-in import
// operation, locally or on the server, calls onProgress (if not nil) after
// each chunk, and returns what was written. Importing the same graph twice
// changes nothing. A failed import returns its *operations.Error, whose
// details carry the offset to resume from.
func (c *Client) Import(ctx context.Context, g ImportParams, onProgress func(Progress)) (ImportResult, error) {
	raw, err := c.Run(ctx, ImportTypeName, g, onProgress)
	if err != nil {
		return ImportResult{}, err
	}
	var res ImportResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return ImportResult{}, fmt.Errorf("atg: decode import result: %w", err)
	}
	return res, nil
}

// LoadClientOptions loads what NewClient needs from the environment and
// opts' .env file: the client configuration (LoadClientConfig) and, in
// local mode, the environment and Neo4j settings (LoadLocalConfig).
func LoadClientOptions(opts LoadOptions) (ClientOptions, error) {
	cfg, err := LoadClientConfig(opts)
	if err != nil {
		return ClientOptions{}, err
	}
	co := ClientOptions{Config: cfg}
	if !cfg.RemoteMode {
		if co.Environment, co.Neo4j, err = LoadLocalConfig(opts); err != nil {
			return ClientOptions{}, err
		}
	}
	return co, nil
}
