// Package transport is ATG's HTTP API: the server side (API, its routes,
// middleware, the query route's administration guard, server-sent events)
// and the client (Client, with retries of idempotent calls and resumable
// event streams), sharing one error envelope (*Error, with sentinels such
// as ErrValidation and ErrNotFound for errors.Is).
//
// Most programs use it through package atg (atg.Server, atg.Client). Used
// directly, an API is an http.Handler:
//
//	api, err := transport.NewAPI(transport.Options{
//		Authenticate: (&auth.Middleware{Authenticator: authn}).Wrap,
//		Engine:       engine, // *operations.Engine
//		DB:           manager, // *neo4jpool.Manager
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	log.Fatal(http.ListenAndServe("127.0.0.1:8000", api))
//
// and a Client calls one:
//
//	c, err := transport.NewClient(transport.ClientOptions{BaseURL: "https://atg.example", APIKey: key})
//	if err != nil {
//		log.Fatal(err)
//	}
//	rows, err := c.Query(ctx, transport.QueryRequest{Query: "MATCH (n) RETURN count(n) AS n"})
package transport
