package atg

import (
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
)

// newEngine starts the operations engine of a Server or local Client: the
// built-in "import" and the given types (and those the factories build) on
// environment env of db, with database outages reported as
// SERVICE_UNAVAILABLE. cfg supplies the engine's other settings.
func newEngine(db *neo4jpool.Manager, env string, types []operations.Type, factories []TypeFactory, cfg operations.Config) (*operations.Engine, error) {
	reg := &operations.Registry{}
	all := append([]operations.Type{ImportType(db, env)}, types...)
	for _, f := range factories {
		all = append(all, f(db, env))
	}
	for _, t := range all {
		if err := reg.Register(t); err != nil {
			return nil, err
		}
	}
	cfg.Registry, cfg.ClassifyError = reg, classifyOperationError
	return operations.New(cfg)
}

// classifyOperationError reports a database outage as SERVICE_UNAVAILABLE.
func classifyOperationError(err error) *operations.Error {
	if neo4jpool.IsUnavailable(err) {
		return &operations.Error{Code: operations.CodeUnavailable, Message: "database unavailable", Err: err}
	}
	return nil
}
