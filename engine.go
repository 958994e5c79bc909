package atg

import (
	"slices"

	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
)

// newEngine starts the operations engine of a Server or local Client: the
// built-in "import" and "scan" (with scan's options) and the given types
// (and those the factories build) on environment env of db, with database
// outages reported as SERVICE_UNAVAILABLE. A given type named "scan"
// replaces the built-in one. cfg supplies the engine's other settings.
func newEngine(db *neo4jpool.Manager, env string, types []operations.Type, factories []TypeFactory, scan ScanOptions, cfg operations.Config) (*operations.Engine, error) {
	reg := &operations.Registry{}
	storeHere := false
	if st, ok := cfg.Store.(interface {
		Uses(*neo4jpool.Manager, string) bool
	}); ok {
		storeHere = st.Uses(db, env)
	}
	all := append([]operations.Type{importType(db, env, storeHere)}, types...)
	for _, f := range factories {
		all = append(all, f(db, env))
	}
	if !slices.ContainsFunc(all, func(t operations.Type) bool { return t.Name == ScanTypeName }) {
		all = append(all, ScanType(db, env, scan))
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
