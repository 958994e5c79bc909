package neo4jpool

import (
	"errors"
	"net"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// IsRetryable reports whether running the same work again may succeed: the
// error chain holds a driver error that neo4j.IsRetryable accepts (a
// connectivity error other than a connection lost during COMMIT, a pool
// time-out, a Neo4j TransientError, NotALeader, ForbiddenOnReadOnlyDatabase
// or AuthorizationExpired), or the driver's "Pool closed" (the call's
// driver was closed under it, as a reconfiguration does: the environment's
// next driver may serve it).
//
// Unlike neo4j.IsRetryable it looks through wrapping (fmt.Errorf("%w"),
// [EnvError], [ChunkError], ...). It never reports a
// *neo4j.TransactionExecutionLimit or a *RetryTimeError as retryable:
// those errors mean the driver's own retries for a managed transaction
// already ran out, and retrying again would multiply them. It adds no
// other classes of its own.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var limit *neo4j.TransactionExecutionLimit
	if errors.As(err, &limit) || errors.Is(err, ErrRetryTimeExceeded) {
		return false
	}
	if isPoolClosed(err) {
		return true
	}
	var conn *neo4j.ConnectivityError
	if errors.As(err, &conn) {
		return neo4j.IsRetryable(conn)
	}
	var dbErr *neo4j.Neo4jError
	if errors.As(err, &dbErr) {
		return neo4j.IsRetryable(dbErr)
	}
	return false
}

// authCodes are the Neo4j status codes that mean the credentials were not
// accepted (as opposed to Forbidden, which means the user lacks a privilege).
var authCodes = map[string]bool{
	"Neo.ClientError.Security.Unauthorized":            true,
	"Neo.ClientError.Security.AuthenticationRateLimit": true,
	"Neo.ClientError.Security.CredentialsExpired":      true,
	"Neo.ClientError.Security.TokenExpired":            true,
}

// IsAuthError reports whether err means Neo4j rejected the configured
// credentials (wrong user or password, too many failed attempts, expired
// credentials). Such errors are never retried by [Retry] or [Manager.WaitReady].
func IsAuthError(err error) bool {
	if err == nil {
		return false
	}
	var dbErr *neo4j.Neo4jError
	if errors.As(err, &dbErr) && authCodes[neo4jCode(dbErr)] {
		return true
	}
	var tokenErr *neo4j.TokenExpiredError
	if errors.As(err, &tokenErr) {
		return true
	}
	var invalidAuth *neo4j.InvalidAuthenticationError
	return errors.As(err, &invalidAuth)
}

// IsUnavailable reports whether err means the database could not be reached
// or cannot serve right now: a driver connectivity error (refused, reset,
// time-out, no connection free in the pool), a network error, the server
// code Neo.TransientError.General.DatabaseUnavailable, the driver giving up
// its retries on one of these, a chunk that timed out (ErrChunkTimeout), a
// failed [Manager.WaitReady], a closed manager or environment, or the
// driver's "Pool closed" (a driver closed under a waiting call). An HTTP
// layer maps these to 503.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, ErrChunkTimeout) || isPoolClosed(err) {
		return true
	}
	var notReady *NotReadyError
	if errors.As(err, &notReady) {
		return true
	}
	var limit *neo4j.TransactionExecutionLimit
	if errors.As(err, &limit) {
		for _, e := range limit.Errors {
			if IsUnavailable(e) {
				return true
			}
		}
		return false
	}
	var conn *neo4j.ConnectivityError
	if errors.As(err, &conn) {
		return true
	}
	var dbErr *neo4j.Neo4jError
	if errors.As(err, &dbErr) {
		return neo4jCode(dbErr) == "Neo.TransientError.General.DatabaseUnavailable"
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

// IsClientError reports whether err is a Neo4j ClientError other than a
// security error: a Cypher syntax error, a constraint violation, a wrong
// parameter type, a write in a read transaction and the like, including
// the codes the driver reclassifies as client errors (a pre-5.0 server's
// Neo.TransientError.Transaction.Terminated and LockClientStopped).
// Errors the driver retries (NotALeader, ForbiddenOnReadOnlyDatabase) are
// not client errors. Retrying such errors cannot succeed; an HTTP layer
// maps them to 400.
func IsClientError(err error) bool {
	if err == nil {
		return false
	}
	var dbErr *neo4j.Neo4jError
	if !errors.As(err, &dbErr) {
		return false
	}
	return dbErr.Classification() == "ClientError" && dbErr.Category() != "Security" && !dbErr.IsRetriable()
}

// neo4jCode returns the status code of e as the driver classifies it. The
// driver rewrites a few pre-5.0 codes (for example
// Neo.TransientError.Transaction.Terminated becomes
// Neo.ClientError.Transaction.Terminated) the first time one of its
// accessors runs; calling Classification first makes the answer the same
// whichever classifier saw the error first.
func neo4jCode(e *neo4j.Neo4jError) string {
	_ = e.Classification()
	return e.Code
}

// poolClosedMessage is the message of the *neo4j.UsageError the driver
// returns to a call whose pool was closed while the call waited for a
// connection (errorutil.PoolClosed, not exported). It is golden-tested
// against the pinned driver version.
const poolClosedMessage = "Pool closed"

// isPoolClosed reports whether err holds the driver's "Pool closed".
func isPoolClosed(err error) bool {
	var ue *neo4j.UsageError
	return errors.As(err, &ue) && ue.Message == poolClosedMessage
}
