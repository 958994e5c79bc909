package neo4jpool

import (
	"context"
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
	work neo4j.ManagedTransactionWork, configurers ...func(*neo4j.TransactionConfig)) (any, error) {
	return m.call(ctx, env, work, func(c callOn) (any, error) {
		return m.executeOnceOn(c, env, mode, fetchSize, work, configurers)
	})
}

// executeOnceOn is ExecuteOnce on one driver (see call).
func (m *Manager) executeOnceOn(c callOn, env string, mode neo4j.AccessMode, fetchSize int,
	work neo4j.ManagedTransactionWork, configurers []func(*neo4j.TransactionConfig)) (result any, err error) {
	op := "write transaction"
	if mode == neo4j.AccessModeRead {
		op = "read transaction"
	}
	wrap := func(err error) error {
		return &EnvError{Env: env, URI: RedactURI(c.cfg.URI), Op: op, Err: err}
	}
	ctx := c.ctx
	session := c.d.NewSession(ctx, neo4j.SessionConfig{AccessMode: mode, DatabaseName: c.cfg.Database, FetchSize: fetchSize})
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionCloseTimeout)
		defer cancel()
		_ = session.Close(closeCtx)
	}()
	tx, err := session.BeginTransaction(ctx, configurers...)
	if c.started() {
		if err == nil {
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionCloseTimeout)
			_ = tx.Close(closeCtx)
			cancel()
		}
		return nil, wrap(errHandOver)
	}
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
	*c.attempts = 1
	c.em.txStart.observe(time.Since(c.start).Seconds())
	c.em.txBegin()
	result, err = work(tx)
	if err == nil {
		err = tx.Commit(ctx)
	}
	c.em.txEnd()
	if err != nil {
		return nil, wrap(err)
	}
	return result, nil
}
