package atg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// ClientOptions configure NewClient. Config.RemoteMode chooses the mode.
type ClientOptions struct {
	// Config is the client configuration (see LoadClientConfig). In remote
	// mode ServiceURL and APIKey are required.
	Config ClientConfig
	// Neo4j is the database of local mode (see LoadNeo4jConfig); required
	// in local mode, ignored in remote mode.
	Neo4j neo4jpool.Config
	// Environment names the local environment; empty means dev.
	Environment auth.Environment
	// Types are operation types local mode runs besides "import". (In
	// remote mode the server decides which types exist.)
	Types []operations.Type
	// TypeFactories build more local-mode types from the client's own
	// Neo4j manager and environment, so they share its one pool.
	TypeFactories []TypeFactory
	// MaxConcurrentOps bounds operations running at once in local mode;
	// 0 means DefaultMaxConcurrentOps.
	MaxConcurrentOps int
	// QueryMaxRows caps rows returned by Query in local mode; 0 means
	// DefaultQueryMaxRows (10,000).
	QueryMaxRows int
	// QueryMaxBytes caps the bytes of rows (as JSON) returned by Query in
	// local mode; 0 means transport.DefaultQueryMaxBytes (16 MiB).
	QueryMaxBytes int64
	// ClientID owns the operations submitted in local mode; empty means "local".
	ClientID string
	// UserAgent is prefixed to the User-Agent of remote requests.
	UserAgent string
	// MaxRetries is how often remote mode retries a retryable request
	// (connection errors, 429, 502, 503, 504 on idempotent calls); 0 means
	// transport.DefaultMaxRetries, negative means never.
	MaxRetries int
	// RetryBaseDelay is remote mode's first wait between retries (doubling,
	// with jitter, up to 10 s); 0 means transport.DefaultRetryBaseDelay.
	RetryBaseDelay time.Duration
	// Logger receives local mode's logs (the pool's connection events,
	// operation failures); nil means none: a library logs nothing unless
	// given a logger.
	Logger *slog.Logger
}

// Client runs the same calls in this process (local mode: a Neo4j manager
// and an operations engine of its own) or on an atg-server (remote mode:
// HTTP). Results and errors have the same types either way: server-side
// problems are *transport.Error (errors.Is with transport.ErrValidation,
// transport.ErrNotFound, ...), a failed operation is an *operations.Error.
// Create it with NewClient and release it with Close.
type Client struct {
	remote *transport.Client
	local  *localClient
	once   sync.Once
}

// NewClient validates o and returns a Client in the chosen mode. Local mode
// does not connect yet: the first call that needs the database does.
func NewClient(o ClientOptions) (*Client, error) {
	if o.Config.RequestTimeout == 0 {
		o.Config.RequestTimeout = DefaultRequestTimeout
	}
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.Config.RemoteMode {
		rc, err := transport.NewClient(transport.ClientOptions{
			BaseURL: o.Config.ServiceURL, APIKey: o.Config.APIKey, RequestTimeout: o.Config.RequestTimeout,
			UserAgent: o.UserAgent, Version: Version, MaxRetries: o.MaxRetries, RetryBaseDelay: o.RetryBaseDelay,
		})
		if err != nil {
			return nil, err
		}
		return &Client{remote: rc}, nil
	}
	lc, err := newLocalClient(o)
	if err != nil {
		return nil, err
	}
	return &Client{local: lc}, nil
}

// Remote reports whether the client talks to an atg-server.
func (c *Client) Remote() bool { return c.remote != nil }

// Health reports the service's (remote) or database's (local) health.
func (c *Client) Health(ctx context.Context) (*transport.HealthResponse, error) {
	if c.remote != nil {
		return c.remote.Health(ctx)
	}
	return c.local.health(ctx)
}

// Status reports the caller, the database, the pool and operation counts.
func (c *Client) Status(ctx context.Context) (*transport.StatusResponse, error) {
	if c.remote != nil {
		return c.remote.Status(ctx)
	}
	return c.local.status(ctx)
}

// Query runs a Cypher query: q.Mode "read" (default) runs in a read
// transaction, "write" in a write transaction. Row values are JSON values
// with numbers as json.Number in both modes.
func (c *Client) Query(ctx context.Context, q transport.QueryRequest) (*transport.QueryResponse, error) {
	if c.remote != nil {
		return c.remote.Query(ctx, q)
	}
	return transport.RunQuery(ctx, c.local.db, c.local.env, q, c.local.limits)
}

// Submit queues an operation of type typ with params (any JSON-encodable
// value, nil for none) and returns at once. Unknown types and invalid
// params are a *transport.Error with code VALIDATION_ERROR naming the
// supported types or the offending parameter.
func (c *Client) Submit(ctx context.Context, typ string, params any) (*transport.Submitted, error) {
	return c.SubmitWithKey(ctx, typ, params, "")
}

// SubmitWithKey is Submit with an idempotency key: submitting again with
// the same key, type and params returns the first operation instead of
// starting another (a different type or params is a 409
// IDEMPOTENCY_KEY_REUSED). Remote mode generates a key when key is empty,
// so its own retries are always safe; pass one to make your retries safe
// too, e.g. after losing the reply.
func (c *Client) SubmitWithKey(ctx context.Context, typ string, params any, key string) (*transport.Submitted, error) {
	if c.remote != nil {
		return c.remote.Submit(ctx, typ, params, key)
	}
	return c.local.submit(ctx, typ, params, key)
}

// Get returns an operation.
func (c *Client) Get(ctx context.Context, id string) (*transport.OperationView, error) {
	if c.remote != nil {
		return c.remote.Get(ctx, id)
	}
	op, err := c.local.engine.Get(ctx, id)
	if err != nil || !op.VisibleTo(c.local.clientID, false) {
		return nil, localError(orNotFound(err))
	}
	v := transport.ViewOf(op)
	return &v, nil
}

// List returns one page of the caller's operations, newest first.
func (c *Client) List(ctx context.Context, o transport.ListOptions) (*transport.ListResponse, error) {
	if c.remote != nil {
		return c.remote.List(ctx, o)
	}
	return c.local.list(ctx, o)
}

// Cancel cancels a queued or running operation. Cancelling one that is
// already cancelled succeeds (so a retried cancel is safe); one that
// completed or failed is a 409 OPERATION_NOT_CANCELLABLE.
func (c *Client) Cancel(ctx context.Context, id string) (*transport.OperationView, error) {
	if c.remote != nil {
		return c.remote.Cancel(ctx, id)
	}
	current, err := c.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	op, err := c.local.engine.Cancel(ctx, id, operations.ReasonClientAsked)
	var nce *operations.NotCancellableError
	if errors.As(err, &nce) && nce.Status == operations.Cancelled {
		return current, nil // already cancelled: done, as in remote mode
	}
	if err != nil {
		return nil, localError(err)
	}
	v := transport.ViewOf(op)
	return &v, nil
}

// EventStream delivers one operation's events in order, each once, ending
// with io.EOF after the terminal event.
type EventStream interface {
	// Next returns the next event, io.EOF after the terminal one.
	Next(ctx context.Context) (transport.Event, error)
	// Close releases the stream.
	Close() error
}

// Watch follows operation id's events after sequence number after (0: all,
// replaying history). Remote streams resume transparently after a dropped
// connection.
func (c *Client) Watch(ctx context.Context, id string, after int64) (EventStream, error) {
	if c.remote != nil {
		s, err := c.remote.Events(ctx, id, after)
		if err != nil {
			return nil, err // a true nil, not a nil *transport.EventStream
		}
		return s, nil
	}
	if _, err := c.Get(ctx, id); err != nil {
		return nil, err
	}
	return &localStream{e: c.local.engine, id: id, last: after}, nil
}

// Run submits an operation and waits for it, calling onProgress (if not
// nil) with each progress report. It returns the operation's JSON result,
// or its *operations.Error when it failed or was cancelled. Cancelling ctx
// stops waiting but not the operation; use Cancel for that.
func (c *Client) Run(ctx context.Context, typ string, params any, onProgress func(operations.Progress)) (json.RawMessage, error) {
	sub, err := c.Submit(ctx, typ, params)
	if err != nil {
		return nil, err
	}
	return c.Wait(ctx, sub.OperationID, onProgress)
}

// Wait follows operation id to its end like Run does.
func (c *Client) Wait(ctx context.Context, id string, onProgress func(operations.Progress)) (json.RawMessage, error) {
	s, err := c.Watch(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	for {
		ev, err := s.Next(ctx)
		if err != nil {
			return nil, err
		}
		switch ev.Type {
		case operations.EventProgress:
			if onProgress != nil {
				var p operations.ProgressData
				if json.Unmarshal(ev.Data, &p) == nil {
					onProgress(p.Progress)
				}
			}
		case operations.EventComplete, operations.EventError:
			var t operations.TerminalData
			if err := json.Unmarshal(ev.Data, &t); err != nil {
				return nil, fmt.Errorf("atg: decode terminal event of %s: %w", id, err)
			}
			if t.Status == operations.Completed {
				return t.Result, nil
			}
			if t.Error == nil {
				t.Error = &operations.Error{Code: operations.CodeInternal, Message: "operation " + string(t.Status)}
			}
			return nil, t.Error
		}
	}
}

// Close releases the client: in local mode, running operations are
// cancelled and the Neo4j drivers closed; in remote mode idle connections
// are closed (operations on the server go on).
func (c *Client) Close(ctx context.Context) error {
	var err error
	c.once.Do(func() {
		if c.local != nil {
			err = c.local.close(ctx)
		} else {
			err = c.remote.Close()
		}
	})
	return err
}

// localClient is the in-process half of Client.
type localClient struct {
	db       *neo4jpool.Manager
	engine   *operations.Engine
	env      string
	clientID string
	limits   transport.QueryLimits
	started  time.Time
}

func newLocalClient(o ClientOptions) (*localClient, error) {
	env := o.Environment
	if env == "" {
		env = auth.Dev
	}
	if !env.Valid() {
		return nil, fmt.Errorf("atg: unknown environment %q: must be dev, integration or production", env)
	}
	if o.Neo4j.URI == "" {
		return nil, fmt.Errorf("atg: local mode needs a Neo4j configuration (NEO4J_URI, NEO4J_PASSWORD; see LoadNeo4jConfig)")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db := neo4jpool.NewManager(neo4jpool.Options{Logger: log})
	if err := db.Configure(context.Background(), string(env), o.Neo4j.WithDefaults()); err != nil {
		return nil, err
	}
	engine, err := newEngine(db, string(env), o.Types, o.TypeFactories, operations.Config{MaxConcurrent: o.MaxConcurrentOps, Logger: log})
	if err != nil {
		_ = db.CloseAll(context.Background())
		return nil, err
	}
	lc := &localClient{db: db, engine: engine, env: string(env), clientID: o.ClientID, limits: transport.QueryLimits{MaxRows: o.QueryMaxRows, MaxBytes: o.QueryMaxBytes}, started: time.Now()}
	if lc.clientID == "" {
		lc.clientID = "local"
	}
	return lc, nil
}

func (l *localClient) health(ctx context.Context) (*transport.HealthResponse, error) {
	h := transport.NewHealthResponse(l.db.Check(ctx, l.env), Version, l.env, l.started)
	return &h, nil
}

func (l *localClient) status(ctx context.Context) (*transport.StatusResponse, error) {
	return transport.BuildStatus(ctx, transport.StatusSource{
		Identity: auth.Identity{ClientID: l.clientID, KeyID: "local", Environment: auth.Environment(l.env),
			Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeWrite, auth.ScopeAdmin}},
		Environment: l.env, Version: Version, Health: l.db.Check(ctx, l.env),
		Engine: l.engine, DB: l.db, DBEnvironment: l.env, Started: l.started,
	})
}

func (l *localClient) submit(ctx context.Context, typ string, params any, key string) (*transport.Submitted, error) {
	var raw json.RawMessage
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("atg: encode params: %w", err)
		}
		raw = b
	}
	op, _, err := l.engine.Submit(ctx, operations.SubmitRequest{ClientID: l.clientID, Type: typ, Params: raw, IdempotencyKey: key})
	if err != nil {
		return nil, localError(err)
	}
	v := transport.ViewOf(op)
	return &transport.Submitted{OperationID: op.ID, Type: op.Type, Status: op.Status, CreatedAt: op.CreatedAt, Links: v.Links}, nil
}

func (l *localClient) list(ctx context.Context, o transport.ListOptions) (*transport.ListResponse, error) {
	return transport.ListOperations(ctx, l.engine, auth.Identity{ClientID: l.clientID}, o)
}

func (l *localClient) close(ctx context.Context) error {
	return errors.Join(ignoreClosed(l.engine.Close(ctx)), ignoreClosed(l.db.CloseAll(ctx)))
}

// ignoreClosed drops the error of closing something already closed.
func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// localError gives engine errors the same type and code a server would.
func localError(err error) error {
	if ae := transport.OperationError(err); ae != nil {
		return ae
	}
	return err
}

func orNotFound(err error) error {
	if err == nil {
		return operations.ErrNotFound
	}
	return err
}

// localStream adapts an engine subscription to EventStream, resubscribing
// after the last event seen if it ever lags.
type localStream struct {
	e    *operations.Engine
	id   string
	last int64
	sub  *operations.Subscription
	done bool
}

func (s *localStream) Next(ctx context.Context) (transport.Event, error) {
	for {
		if s.done {
			return transport.Event{}, io.EOF
		}
		if s.sub == nil {
			sub, err := s.e.Subscribe(ctx, s.id, s.last)
			if err != nil {
				return transport.Event{}, localError(err)
			}
			s.sub = sub
		}
		ev, err := s.sub.Next(ctx)
		switch {
		case errors.Is(err, operations.ErrLagged):
			s.sub.Close()
			s.sub = nil
			continue
		case errors.Is(err, io.EOF):
			s.done = true
			return transport.Event{}, io.EOF
		case err != nil:
			return transport.Event{}, err
		}
		if ev.Seq <= s.last {
			continue
		}
		s.last = ev.Seq
		if ev.Type.Terminal() {
			s.done = true
		}
		return transport.Event{Seq: ev.Seq, Type: ev.Type, Data: ev.Data}, nil
	}
}

func (s *localStream) Close() error {
	if s.sub != nil {
		s.sub.Close()
	}
	s.done = true
	return nil
}
