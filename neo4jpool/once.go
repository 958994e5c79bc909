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

	d, cfg, err := m.driver(ctx, env)
	if err != nil {
		return nil, err
	}
	op := "write transaction"
	if mode == neo4j.AccessModeRead {
		op = "read transaction"
	}
	wrap := func(err error) error {
		return &EnvError{Env: env, URI: RedactURI(cfg.URI), Op: op, Err: err}
	}
	session := d.NewSession(ctx, neo4j.SessionConfig{AccessMode: mode, DatabaseName: cfg.Database, FetchSize: fetchSize})
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionCloseTimeout)
		defer cancel()
		_ = session.Close(closeCtx)
	}()
	tx, err := session.BeginTransaction(ctx, configurers...)
	if err != nil {
		return nil, wrap(err)
	}
	defer func() {
		if err != nil {
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionCloseTimeout)
			defer cancel()
			_ = tx.Close(closeCtx) // rolls back what did not commit
		}
	}()
	attempts = 1
	em.txStart.observe(time.Since(start).Seconds())
	em.txBegin()
	result, err = work(tx)
	if err == nil {
		err = tx.Commit(ctx)
	}
	em.txEnd()
	if err != nil {
		return nil, wrap(err)
	}
	return result, nil
}
