package neo4jpool

import (
	"context"
	"errors"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// ExecuteOnce runs work in exactly one explicit transaction of the given
// access mode on env's database, and commits it when work returns no error
// (rolls it back otherwise). Unlike [Manager.ExecuteRead] and
// [Manager.ExecuteWrite] nothing is retried and
// Config.MaxTransactionRetryTime plays no part: the transaction lasts as
// long as ctx and the transaction timeout among configurers allow. Use it
// for statements you do not want run twice or cut at the retry time, such
// as a user's query. fetchSize is the number of records fetched per batch
// (0: the driver's default, 1000); a small one bounds the memory a result
// of large rows takes. It maintains the environment's metrics.
func (m *Manager) ExecuteOnce(ctx context.Context, env string, mode neo4j.AccessMode, fetchSize int,
	work neo4j.ManagedTransactionWork, configurers ...func(*neo4j.TransactionConfig)) (result any, err error) {
	if work == nil {
		return nil, errors.New("neo4jpool: transaction work function is nil")
	}
	em, err := m.envMetricsFor(env)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	em.callBegin()
	attempts := 0
	defer func() { em.callEnd(err, attempts, start) }()

	for round := 1; ; round++ {
		d, cfg, err := m.driver(ctx, env)
		if err != nil {
			return nil, err
		}
		var moved bool
		result, moved, err = m.executeOnceOn(ctx, env, d, cfg, mode, fetchSize, work, configurers, start, em, &attempts)
		if moved && round < maxHandOvers && ctx.Err() == nil {
			continue // the environment was reconfigured while the call waited
		}
		return result, err
	}
}

// executeOnceOn is ExecuteOnce on driver d; moved reports that d was
// retired while the call waited for a connection (nothing ran).
func (m *Manager) executeOnceOn(ctx context.Context, env string, d neo4j.DriverWithContext, cfg Config, mode neo4j.AccessMode, fetchSize int,
	work neo4j.ManagedTransactionWork, configurers []func(*neo4j.TransactionConfig), start time.Time, em *envMetrics, attempts *int) (result any, moved bool, err error) {
	op := "write transaction"
	if mode == neo4j.AccessModeRead {
		op = "read transaction"
	}
	wrap := func(err error) error {
		return &EnvError{Env: env, URI: RedactURI(cfg.URI), Op: op, Err: err}
	}
	wctx, u, ok := m.use(ctx, env, d)
	if !ok {
		return nil, true, wrap(errHandOver)
	}
	defer m.release(d, u) // after the session's close below
	session := d.NewSession(wctx, neo4j.SessionConfig{AccessMode: mode, DatabaseName: cfg.Database, FetchSize: fetchSize})
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionCloseTimeout)
		defer cancel()
		_ = session.Close(closeCtx)
	}()
	tx, err := session.BeginTransaction(wctx, configurers...)
	if m.unwait(u) {
		if err == nil {
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionCloseTimeout)
			_ = tx.Close(closeCtx)
			cancel()
		}
		return nil, true, wrap(errHandOver)
	}
	if err != nil {
		return nil, false, wrap(err)
	}
	defer func() {
		if err != nil {
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionCloseTimeout)
			defer cancel()
			_ = tx.Close(closeCtx) // rolls back what did not commit
		}
	}()
	*attempts = 1
	em.txStart.observe(time.Since(start).Seconds())
	em.txBegin()
	result, err = work(tx)
	if err == nil {
		err = tx.Commit(wctx)
	}
	em.txEnd()
	if err != nil {
		return nil, false, wrap(err)
	}
	return result, false, nil
}
