// Package atg lets Go programs and remote teams work on one shared Neo4j
// graph of a cloud tenant safely: API-key authentication, one pooled Neo4j
// driver per environment, health and honest pool metrics, long graph writes
// split into committed chunks with progress, and the same operations runnable
// in-process (embedded) or on a remote atg-server.
//
// A Client runs operations in this process or on a server, with the same
// results and errors:
//
//	opts, err := atg.LoadClientOptions(atg.LoadOptions{DotenvFile: ".env"})
//	if err != nil {
//		log.Fatal(err) // names every bad variable and its rule
//	}
//	c, err := atg.NewClient(opts) // remote when ATG_REMOTE_MODE is on
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer c.Close(ctx)
//	res, err := c.Import(ctx, atg.ImportParams{Nodes: []atg.Node{{ID: "t1", Labels: []string{"Tenant"}}}}, nil)
//
// A Server serves the HTTP API with the keys of a KeyStore:
//
//	cfg, err := atg.LoadServerConfig(atg.LoadOptions{DotenvFile: ".env"})
//	if err != nil {
//		log.Fatal(err)
//	}
//	slog.Info("starting", "config", cfg) // API keys and passwords are redacted
//	srv := &atg.Server{Config: cfg, KeyStore: atg.NewMemoryKeyStore()}
//	if err := srv.Start(ctx); err != nil {
//		log.Fatal(err)
//	}
//	defer srv.Shutdown(ctx)
//
// The subpackages stand on their own: auth (API keys, key stores, HTTP
// middleware), neo4jpool (drivers, health, metrics, chunked writes),
// operations (the engine and its stores) and transport (the HTTP API and
// its client).
package atg
