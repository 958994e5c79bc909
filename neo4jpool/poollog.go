package neo4jpool

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j/log"
)

// The driver (v5.28.4, pinned in go.mod) has no pool metrics API
// (neo4j/neo4j-go-driver#637). Its only window on the pool is its logger:
// config.Log receives every log call with the component name ("pool",
// "bolt5", ...), the component id and the unformatted message. driverLogger
// classifies the calls the metrics count and forwards everything to slog.
//
// Log strings are not API. The formats below are copied from
// neo4j/internal/pool/pool.go and neo4j/internal/bolt/bolt{3,4,5}.go of the
// pinned version; testdata/poollog/v5.28.4.txt golden-tests them, and a
// test checks they still occur in the driver source in the module cache.

// logLevel is the driver method that logged.
type logLevel int

const (
	levelError logLevel = iota
	levelWarn
	levelInfo
	levelDebug
)

func (l logLevel) String() string {
	switch l {
	case levelError:
		return "ERROR"
	case levelWarn:
		return "WARN"
	case levelInfo:
		return "INFO"
	default:
		return "DEBUG"
	}
}

// logEvent is what a driver log call means for the metrics.
type logEvent int

const (
	eventNone            logEvent = iota
	eventBorrowQueued             // pool: a borrow joins the wait queue (again after each wake-up that finds no connection)
	eventAcquireTimeout           // pool: a borrow gave up (its ctx ended while queued: acquisition time-out, caller's deadline or cancellation; or a dial timed out)
	eventConnectFailed            // pool: dialling, TLS, handshake or login failed
	eventConnected                // bolt: a new connection completed handshake and login
	eventConnectionClose          // bolt: a connection is being closed
)

func (e logEvent) String() string {
	switch e {
	case eventBorrowQueued:
		return "borrow_queued"
	case eventAcquireTimeout:
		return "acquire_timeout"
	case eventConnectFailed:
		return "connect_failed"
	case eventConnected:
		return "connected"
	case eventConnectionClose:
		return "connection_close"
	default:
		return "none"
	}
}

// Exact message formats of neo4j-go-driver v5.28.4.
const (
	fmtBorrowQueued  = "Borrow queued"               // pool.go, Warnf
	fmtBorrowTimeout = "Borrow time-out"             // pool.go, Warnf (twice)
	fmtConnectFailed = "Failed to connect to %s: %s" // pool.go, Warnf
	fmtBoltConnected = "Connected"                   // bolt3/4/5.go, Infof
	fmtBoltClose     = "Close"                       // bolt3/4/5.go, Infof
	// connector.go, Warnf (component driver); only its slog level changes.
	fmtCloseAfterFailedConnect = "could not close socket after failed connection %s"
	componentPool              = log.Pool
	componentBolt3             = log.Bolt3
	componentBolt4             = log.Bolt4
	componentBolt5             = log.Bolt5
)

// classifyDriverLog maps one driver log call (level, component name and
// unformatted message) to the event the metrics count.
func classifyDriverLog(level logLevel, name, msg string) logEvent {
	switch name {
	case componentPool:
		if level != levelWarn {
			return eventNone
		}
		switch msg {
		case fmtBorrowQueued:
			return eventBorrowQueued
		case fmtBorrowTimeout:
			return eventAcquireTimeout
		case fmtConnectFailed:
			return eventConnectFailed
		}
	case componentBolt3, componentBolt4, componentBolt5:
		if level != levelInfo {
			return eventNone
		}
		switch msg {
		case fmtBoltConnected:
			return eventConnected
		case fmtBoltClose:
			return eventConnectionClose
		}
	}
	return eventNone
}

// LevelTrace is the slog level of the driver's debug messages: below
// slog.LevelDebug, because the driver logs several of them per transaction.
const LevelTrace = slog.LevelDebug - 4

// slogLevel chooses the slog level a driver log call is forwarded at:
//
//   - Error: Warn for infrastructure components (pool, router, driver);
//     Debug for session and Bolt errors, which are also returned to the
//     caller (the driver's own doc says logged errors are not all critical);
//   - Warnf: Warn, except "Borrow queued" (Debug: it is normal under load
//     and counted by atg_neo4j_pool_borrow_queued_total) and the driver's
//     warning about closing a socket twice after a failed login (Debug);
//   - Infof: Debug (connection open/close chatter);
//   - Debugf: LevelTrace.
func slogLevel(level logLevel, name, msg string) slog.Level {
	switch level {
	case levelError:
		switch name {
		case log.Pool, log.Router, log.Driver:
			return slog.LevelWarn
		}
		return slog.LevelDebug
	case levelWarn:
		if name == log.Pool && msg == fmtBorrowQueued {
			return slog.LevelDebug
		}
		if name == log.Driver && msg == fmtCloseAfterFailedConnect {
			// The driver closes a socket twice after a failed login and
			// warns about the second close: noise.
			return slog.LevelDebug
		}
		return slog.LevelWarn
	case levelInfo:
		return slog.LevelDebug
	default:
		return LevelTrace
	}
}

// driverLogger implements the driver's log.Logger for one environment.
type driverLogger struct {
	env     string
	logger  *slog.Logger
	metrics *envMetrics
}

var _ log.Logger = (*driverLogger)(nil)

func (l *driverLogger) Error(name, id string, err error) {
	l.handle(levelError, name, id, "%v", err)
}

func (l *driverLogger) Warnf(name, id, msg string, args ...any) {
	l.handle(levelWarn, name, id, msg, args...)
}

func (l *driverLogger) Infof(name, id, msg string, args ...any) {
	l.handle(levelInfo, name, id, msg, args...)
}

func (l *driverLogger) Debugf(name, id, msg string, args ...any) {
	l.handle(levelDebug, name, id, msg, args...)
}

func (l *driverLogger) handle(level logLevel, name, id, msg string, args ...any) {
	if l.metrics != nil {
		if ev := classifyDriverLog(level, name, msg); ev != eventNone {
			l.metrics.observe(ev, id)
		}
	}
	if l.logger == nil {
		return
	}
	lvl := slogLevel(level, name, msg)
	ctx := context.Background()
	if !l.logger.Enabled(ctx, lvl) {
		return // do not pay for formatting
	}
	text := msg
	if len(args) > 0 {
		text = fmt.Sprintf(msg, args...)
	}
	l.logger.Log(ctx, lvl, "neo4j driver: "+text,
		slog.String("env", l.env), slog.String("component", name), slog.String("id", id))
}
