package azure

import (
	"context"
	"iter"
	"time"
)

// Table names a Resource Graph table the scan reads.
type Table string

// The tables a scan reads.
const (
	// TableResources holds resources (virtual networks carry their subnets
	// in properties.subnets[]).
	TableResources Table = "Resources"
	// TableResourceContainers holds subscriptions and resource groups.
	TableResourceContainers Table = "ResourceContainers"
	// TableAuthorizationResources holds role assignments (and definitions).
	TableAuthorizationResources Table = "AuthorizationResources"
)

// Row is one row of a table as Resource Graph returns it in an objectArray
// page (or as an inventory file holds it): JSON objects are map[string]any,
// numbers json.Number. A Source never assumes its query's KQL was applied:
// rows may be unprojected and may belong to other subscriptions or types,
// so the mapping filters and shapes on its own.
type Row = map[string]any

// Source reads the rows of a tenant's tables.
type Source interface {
	// Rows streams the rows of table for one subscription (its GUID), or
	// for the whole tenant when subscription is "". The sequence ends after
	// the last row or at the first error (yielded with a nil row); a
	// failure in the middle means the rows yielded so far are incomplete.
	Rows(ctx context.Context, table Table, subscription string) iter.Seq2[Row, error]
	// Stats reports the calls made so far.
	Stats() Stats
}

// Stats counts what a Source did.
type Stats struct {
	// APICalls counts HTTP requests to Resource Graph (retries included).
	APICalls int64 `json:"api_calls"`
	// Pages counts pages of rows received.
	Pages int64 `json:"pages"`
	// Throttled counts waits for the quota or a 429's Retry-After.
	Throttled int64 `json:"throttled_waits"`
	// ThrottledFor is the time spent in those waits.
	ThrottledFor time.Duration `json:"throttled_for_ns"`
}
