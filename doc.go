// Package atg lets Go programs and remote teams work on one shared Neo4j
// graph of a cloud tenant safely: API-key authentication, one pooled Neo4j
// driver per environment, health and honest pool metrics, long graph writes
// split into committed chunks with progress, and the same operations runnable
// in-process (embedded) or on a remote atg-server.
//
// Configuration comes from the environment and optional .env files:
//
//	cfg, err := atg.LoadServerConfig(atg.LoadOptions{DotenvFile: ".env"})
//	if err != nil {
//		log.Fatal(err) // names every bad variable and its rule
//	}
//	slog.Info("starting", "config", cfg) // API keys and passwords are redacted
//
// The subpackages stand on their own: auth (API keys, key stores, HTTP
// middleware) and neo4jpool (drivers, health, metrics, chunked writes).
package atg
