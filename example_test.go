package atg_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// Loading a client configuration: values come from the environment (here a
// map standing in for it) and an optional .env file; the API key never
// appears in any output.
func ExampleLoadClientConfig() {
	cfg, err := atg.LoadClientConfig(atg.LoadOptions{Environ: map[string]string{
		"ATG_REMOTE_MODE":     "yes",
		"ATG_SERVICE_URL":     "https://atg.example.com",
		"ATG_API_KEY":         "atg_dev_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"ATG_REQUEST_TIMEOUT": "90s",
	}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg)
	b, _ := json.Marshal(cfg)
	fmt.Println(string(b))
	// Output:
	// atg.ClientConfig{RemoteMode:true ServiceURL:https://atg.example.com APIKey:atg_dev_*** RequestTimeout:1m30s}
	// {"remote_mode":true,"service_url":"https://atg.example.com","api_key":"atg_dev_***","request_timeout":90}
}

// Every invalid value is reported at once, naming its variable and rule;
// errors.As reaches each *atg.FieldError.
func ExampleLoadClientConfig_invalid() {
	_, err := atg.LoadClientConfig(atg.LoadOptions{Environ: map[string]string{
		"ATG_REMOTE_MODE":     "on",
		"ATG_SERVICE_URL":     "ftp://atg.example.com",
		"ATG_REQUEST_TIMEOUT": "-5",
	}})
	fmt.Println(errors.Is(err, atg.ErrInvalidConfig))
	var ce *atg.ConfigError
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Println(p)
		}
	}
	// Output:
	// true
	// ATG_API_KEY: API key is required when remote mode is enabled
	// ATG_SERVICE_URL="ftp://atg.example.com": invalid URL format: must start with https:// or http://, name a host and carry no user information
	// ATG_REQUEST_TIMEOUT="-5s": request timeout must be positive
}

// A program that runs operations in-process (local mode) or on an
// atg-server (ATG_REMOTE_MODE=true, ATG_SERVICE_URL, ATG_API_KEY) with the
// same calls. In local mode it needs NEO4J_URI and NEO4J_PASSWORD (start a
// local Neo4j with `scripts/neo4j.sh start` and `eval "$(scripts/neo4j.sh
// env)"`). See examples/embedded for a complete program.
func ExampleClient() {
	ctx := context.Background()
	cfg, err := atg.LoadClientConfig(atg.LoadOptions{DotenvFile: ".env"})
	if err != nil {
		log.Fatal(err)
	}
	opts := atg.ClientOptions{Config: cfg}
	if !cfg.RemoteMode {
		if opts.Neo4j, err = atg.LoadNeo4jConfig(auth.Dev, atg.LoadOptions{DotenvFile: ".env"}); err != nil {
			log.Fatal(err)
		}
	}
	client, err := atg.NewClient(opts)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(ctx)

	// Import a graph document in committed chunks, following its progress.
	g := atg.ImportParams{
		Nodes: []neo4jpool.Node{
			{ID: "tenant-1", Labels: []string{"Tenant"}, Properties: map[string]any{"name": "Contoso"}},
			{ID: "sub-1", Labels: []string{"Subscription"}, Properties: map[string]any{"name": "Production"}},
		},
		Relationships: []neo4jpool.Relationship{{Type: "CONTAINS", From: "tenant-1", To: "sub-1"}},
	}
	raw, err := client.Run(ctx, atg.ImportTypeName, g, func(p operations.Progress) {
		fmt.Printf("%3.0f%% %s\n", p.Percent, p.Message)
	})
	if err != nil {
		log.Fatal(err) // an *operations.Error says what was committed
	}
	var res neo4jpool.ImportResult
	_ = json.Unmarshal(raw, &res)
	fmt.Printf("%d nodes, %d relationships\n", res.Nodes, res.Relationships)

	// Query it back: rows hold JSON values (numbers as json.Number).
	q, err := client.Query(ctx, transport.QueryRequest{
		Query:      "MATCH (:Tenant {id: $id})-[:CONTAINS]->(s:Subscription) RETURN s.name",
		Parameters: map[string]any{"id": "tenant-1"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(q.Rows)
}

// countdown is an operation type that needs no database: it reports
// progress every 10 ms, n times.
func countdown() operations.Type {
	type params struct {
		N int `json:"n"`
	}
	return operations.Type{
		Name:        "countdown",
		Description: "count down from n, one step every 10ms",
		Validate: func(raw json.RawMessage) error {
			var p params
			if err := json.Unmarshal(raw, &p); err != nil || p.N < 1 || p.N > 1000 {
				return &operations.ValidationError{Field: "n", Message: "must be a number between 1 and 1000"}
			}
			return nil
		},
		Run: func(ctx context.Context, raw json.RawMessage, r operations.Reporter) (any, error) {
			var p params
			_ = json.Unmarshal(raw, &p)
			for i := 1; i <= p.N; i++ {
				select {
				case <-ctx.Done(): // cancelled: stop promptly
					return nil, context.Cause(ctx)
				case <-time.After(10 * time.Millisecond):
				}
				r.Progress(operations.Progress{Phase: "counting", Done: int64(i), Total: int64(p.N), Message: fmt.Sprintf("%d to go", p.N-i)})
			}
			return map[string]int{"counted": p.N}, nil
		},
	}
}

// A remote client against an atg-server that registers an operation type of
// its own: Run follows the progress to the result; parameters are checked at
// submit; Cancel stops a running operation; List finds the caller's
// operations. (The server here runs in the
// same process and needs no database for this type.)
func ExampleClient_remote() {
	ctx := context.Background()
	srv, stop := startServer(ctx, countdown())
	defer stop()

	client, err := atg.NewClient(atg.ClientOptions{Config: atg.ClientConfig{
		RemoteMode: true, ServiceURL: srv.URL(), APIKey: srv.DevKey(),
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(ctx)

	result, err := client.Run(ctx, "countdown", map[string]int{"n": 4}, func(p operations.Progress) {
		fmt.Printf("%3.0f%% %s\n", p.Percent, p.Message)
	})
	fmt.Println(string(result), err)

	// Rejected before it is queued: a *transport.Error naming the parameter.
	_, err = client.Submit(ctx, "countdown", map[string]int{"n": 0})
	var te *transport.Error
	if errors.As(err, &te) {
		fmt.Println(te.Status, te.Code, te.Details["field"])
	}
	_, err = client.Submit(ctx, "reindex", nil)
	if errors.As(err, &te) {
		fmt.Println(te.Code, te.Message)
	}

	// Cancel a running operation; waiting for it then returns its error.
	sub, err := client.Submit(ctx, "countdown", map[string]int{"n": 1000})
	if err != nil {
		log.Fatal(err)
	}
	op, err := client.Cancel(ctx, sub.OperationID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(op.Status)
	_, err = client.Wait(ctx, sub.OperationID, nil)
	var oe *operations.Error
	if errors.As(err, &oe) {
		fmt.Println(oe.Code, oe.Message)
	}

	// A finished operation cannot be cancelled (409).
	done, err := client.List(ctx, transport.ListOptions{Type: "countdown", Status: operations.Completed})
	if err != nil {
		log.Fatal(err)
	}
	_, err = client.Cancel(ctx, done.Operations[0].ID)
	fmt.Println(done.Total, errors.Is(err, transport.ErrNotCancellable))
	// Output:
	//  25% 3 to go
	//  50% 2 to go
	//  75% 1 to go
	// 100% 0 to go
	// {"counted":4} <nil>
	// 400 VALIDATION_ERROR params.n
	// VALIDATION_ERROR unknown operation type "reindex"; supported: countdown, import, scan
	// cancelled
	// CANCELLED cancelled by client
	// 1 true
}

// startServer starts a dev server on a random local port with no API key
// configured (so it generates one, see Server.DevKey) and a database that
// is not there; stop shuts it down.
func startServer(ctx context.Context, types ...operations.Type) (*atg.Server, func()) {
	cfg, err := atg.LoadServerConfig(atg.LoadOptions{Environ: map[string]string{
		"ENVIRONMENT":    "dev",
		"NEO4J_URI":      "bolt://127.0.0.1:1", // nothing listens there
		"NEO4J_PASSWORD": "Example-Passw0rd!",
		"ATG_AUDIT_LOG":  "off", // the default, stderr, would interleave with the output
		// Operations in this process's memory: with the default store
		// (neo4j) they would wait for the database like everything else.
		"ATG_OPERATION_STORE": "memory",
	}})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &atg.Server{Config: cfg, Types: types, Listener: ln, Logger: slog.New(slog.DiscardHandler)}
	if err := srv.Start(ctx); err != nil {
		log.Fatal(err)
	}
	return srv, func() { _ = srv.Shutdown(ctx) }
}

// A server starts and serves even when its database is down: /livez
// answers, /api/v1/health reports "degraded", and authenticated routes
// work. With no key configured in dev it generates one (DevKey); without a
// key, requests get the standard 401.
func ExampleServer() {
	ctx := context.Background()
	srv, stop := startServer(ctx)
	defer stop()

	get := func(path, key string, out any) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	fmt.Println("livez", get("/livez", "", nil))

	var health transport.HealthResponse
	fmt.Println("health", get("/api/v1/health", "", &health), health.Status, health.Neo4jStatus)

	var failed struct {
		Error transport.Error `json:"error"`
	}
	fmt.Println("status without a key", get("/api/v1/status", "", &failed), failed.Error.Code)

	var status transport.StatusResponse
	fmt.Println("status with the dev key", get("/api/v1/status", srv.DevKey(), &status),
		status.ClientID, status.Scopes, status.Neo4j.Status, status.OperationTypes)
	// Output:
	// livez 200
	// health 200 degraded disconnected
	// status without a key 401 AUTHENTICATION_FAILED
	// status with the dev key 200 dev [read write admin] disconnected [import scan]
}

// A complete server program: configuration from the environment and .env,
// an operation type of your own, and a graceful shutdown on Ctrl-C. See
// examples/custom-operation for one that imports Azure inventory files.
func ExampleServer_program() {
	cfg, err := atg.LoadServerConfig(atg.LoadOptions{DotenvFile: ".env"})
	if err != nil {
		log.Fatal(err) // names every bad variable and its rule
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	srv := &atg.Server{Config: cfg, Types: []operations.Type{countdown()}}
	if err := srv.Start(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", srv.URL())
	if key := srv.DevKey(); key != "" {
		fmt.Println("dev key:", key) // printed once; valid until the process exits
	}

	select {
	case <-ctx.Done():
	case <-waitChan(srv):
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil { // running operations end cancelled
		log.Print(err)
	}
}

// waitChan reports when srv stops serving on its own.
func waitChan(srv *atg.Server) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- srv.Wait() }()
	return ch
}
