package atg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/azure"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
)

// ScanTypeName is the name of the built-in Azure scan operation.
const ScanTypeName = "scan"

// ScanParams are the parameters of the scan operation.
type ScanParams struct {
	// TenantID is the tenant to scan (a UUID; in dev and integration also
	// <prefix>-<uuid>). Empty means ATG_TARGET_TENANT_ID (the server's
	// configuration, else the environment variable).
	TenantID string `json:"tenant_id,omitempty"`
	// Subscriptions limits the scan to these subscription GUIDs; empty
	// means every subscription of the tenant.
	Subscriptions []string `json:"subscriptions,omitempty"`
	// ResourceGroups limits the scan to these resource groups (names) of
	// the scanned subscriptions.
	ResourceGroups []string `json:"resource_groups,omitempty"`
	// Prune deletes what the scan did not see, in subscriptions whose
	// reads completed; nil means true.
	Prune *bool `json:"prune,omitempty"`
	// DryRun reports the diff and writes nothing (default false).
	DryRun bool `json:"dry_run,omitempty"`
	// ChunkSize is the number of nodes or relationships per transaction;
	// 0 means 1000.
	ChunkSize int `json:"chunk_size,omitempty"`
}

// ScanResult is the result of the scan operation: per subscription the
// nodes and relationships added, changed, unchanged and removed, whether
// its reads completed (only those are pruned), and the Source's calls.
type ScanResult = azure.ScanResult

// ErrAzureNotConfigured is returned (as the operation's error) by scans on
// a server or client given no way to read Azure.
var ErrAzureNotConfigured = errors.New("atg: Azure reading not configured")

// SourceFactory opens the Source a scan reads, for its validated
// parameters (TenantID filled in). Tests, Azure Resource Graph and offline
// inventory files plug in here.
type SourceFactory func(ctx context.Context, p ScanParams) (azure.Source, error)

// defaultScanSource is the Source factory used when none is given.
var defaultScanSource SourceFactory = func(context.Context, ScanParams) (azure.Source, error) {
	return nil, ErrAzureNotConfigured
}

// ScanOptions configure ScanType.
type ScanOptions struct {
	// Source opens what the scan reads; nil means the built-in default
	// (which fails with ErrAzureNotConfigured until Azure reading is
	// configured).
	Source SourceFactory
	// DefaultTenantID is used when the parameters name no tenant; empty
	// means the ATG_TARGET_TENANT_ID environment variable.
	DefaultTenantID string
}

var subscriptionGUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// resourceGroupName is Azure's rule: 1-90 letters, digits, '-', '_', '.',
// '(' and ')', not ending with '.'.
var resourceGroupName = regexp.MustCompile(`^[-\w._()]{0,89}[-\w_()]$`)

// ScanType returns the built-in "scan" operation: it reads a tenant from
// the Source opts.Source opens and writes the graph model (see package
// azure and the README's "Graph model") into environment env of m:
// nodes as rows stream in, relationships after every node, then the prune
// of completed subscriptions. Progress phases: subscriptions, resources
// (one report per page), nodes, edges, prune. Its result is a ScanResult.
// Parameters are checked at submit; a missing tenant is a 400.
func ScanType(m *neo4jpool.Manager, env string, opts ScanOptions) operations.Type {
	source := opts.Source
	if source == nil {
		source = defaultScanSource
	}
	return operations.Type{
		Name:         ScanTypeName,
		Description:  "scan an Azure tenant into the graph {tenant_id, subscriptions, resource_groups, prune, dry_run, chunk_size}",
		ParamsSchema: json.RawMessage(`{"$ref":"#/components/schemas/ScanParams"}`),
		Validate: func(params json.RawMessage) error {
			_, err := decodeScanParams(params, env, opts.DefaultTenantID)
			return err
		},
		Run: func(ctx context.Context, params json.RawMessage, r operations.Reporter) (any, error) {
			p, err := decodeScanParams(params, env, opts.DefaultTenantID)
			if err != nil {
				return nil, err
			}
			src, err := source(ctx, p)
			if err != nil {
				return nil, &operations.Error{Code: "SCAN_FAILED", Message: "cannot read Azure: " + err.Error(), Err: err}
			}
			sc := &azure.Scanner{Manager: m, Env: env, Source: src, Progress: func(sp azure.ScanProgress) {
				r.Progress(operations.Progress{Phase: sp.Phase, Message: sp.Message, Done: sp.Done, Total: sp.Total, Percent: sp.Percent})
			}}
			res, err := sc.Scan(ctx, azure.ScanConfig{
				TenantID: p.TenantID, Subscriptions: p.Subscriptions, ResourceGroups: p.ResourceGroups,
				Prune: p.Prune == nil || *p.Prune, DryRun: p.DryRun, ChunkSize: p.ChunkSize,
			})
			if err != nil {
				return nil, scanError(ctx, err, res)
			}
			for _, s := range res.Subscriptions {
				if !s.Complete {
					r.Log("warn", fmt.Sprintf("subscription %s was read only in part and kept as it was (not pruned): %s", s.SubscriptionID, s.Error))
				}
			}
			return res, nil
		},
	}
}

// scanError describes a stopped scan: CANCELLED when the operation's own
// context ended, SERVICE_UNAVAILABLE for a database outage, SCAN_FAILED
// otherwise. What was committed stays; nothing was pruned unless the
// prune phase had begun.
func scanError(ctx context.Context, err error, res *azure.ScanResult) error {
	details := map[string]any{}
	if res != nil {
		details["scan_id"] = res.ScanID
	}
	switch {
	case ctx.Err() != nil:
		return &operations.Error{Code: operations.CodeCancelled, Message: "scan cancelled; what was committed stays, and a later scan completes it", Details: details, Err: err}
	case neo4jpool.IsUnavailable(err):
		return &operations.Error{Code: operations.CodeUnavailable, Message: "database unavailable", Details: details, Err: err}
	}
	msg := "scan failed: " + err.Error()
	if c := neo4jCode(err); c != "" {
		details["neo4j_code"] = c
	}
	return &operations.Error{Code: "SCAN_FAILED", Message: msg, Details: details, Err: err}
}

// decodeScanParams decodes and checks scan parameters strictly, filling
// in the tenant (parameter, else defaultTenant, else
// ATG_TARGET_TENANT_ID) and lower-casing ids.
func decodeScanParams(params json.RawMessage, env, defaultTenant string) (ScanParams, error) {
	var doc struct {
		TenantID       string          `json:"tenant_id"`
		Subscriptions  []string        `json:"subscriptions"`
		ResourceGroups []string        `json:"resource_groups"`
		Prune          *bool           `json:"prune"`
		DryRun         bool            `json:"dry_run"`
		ChunkSize      json.RawMessage `json:"chunk_size"`
	}
	var p ScanParams
	raw := params
	if len(strings.TrimSpace(string(raw))) == 0 || string(raw) == "null" {
		raw = json.RawMessage("{}")
	}
	if err := strictDecode(raw, &doc); err != nil {
		return p, &operations.ValidationError{Message: "not scan parameters: " + err.Error()}
	}
	p = ScanParams{TenantID: strings.TrimSpace(doc.TenantID), Prune: doc.Prune, DryRun: doc.DryRun}
	field := "tenant_id"
	if p.TenantID == "" {
		p.TenantID, field = strings.TrimSpace(defaultTenant), "ATG_TARGET_TENANT_ID"
		if p.TenantID == "" {
			p.TenantID = strings.TrimSpace(os.Getenv("ATG_TARGET_TENANT_ID"))
		}
	}
	if p.TenantID == "" {
		return p, &operations.ValidationError{Field: "tenant_id", Message: "no tenant to scan: set tenant_id (or ATG_TARGET_TENANT_ID on the server; for the CLI, --tenant-id or ATG_TARGET_TENANT_ID)"}
	}
	if !validTenantID(p.TenantID, auth.Environment(env)) {
		rule := "invalid tenant ID format: must be a valid UUID"
		if auth.Environment(env) != auth.Production {
			rule += " or <prefix>-<uuid>"
		}
		return p, &operations.ValidationError{Field: field, Message: rule}
	}
	p.TenantID = strings.ToLower(p.TenantID)
	for i, s := range doc.Subscriptions {
		s = strings.TrimSpace(s)
		if !subscriptionGUID.MatchString(s) {
			return p, &operations.ValidationError{Field: fmt.Sprintf("subscriptions[%d]", i), Message: "must be a subscription id (a GUID)"}
		}
		p.Subscriptions = append(p.Subscriptions, strings.ToLower(s))
	}
	for i, g := range doc.ResourceGroups {
		if !resourceGroupName.MatchString(g) {
			return p, &operations.ValidationError{Field: fmt.Sprintf("resource_groups[%d]", i), Message: "must be a resource group name (1-90 letters, digits, '-', '_', '.', '(' or ')', not ending with '.')"}
		}
		p.ResourceGroups = append(p.ResourceGroups, strings.ToLower(g))
	}
	if len(doc.ChunkSize) > 0 && string(doc.ChunkSize) != "null" {
		f, err := strconv.ParseFloat(string(doc.ChunkSize), 64)
		if err != nil || f != math.Trunc(f) || f < 0 || f > neo4jpool.MaxChunkSize {
			return p, &operations.ValidationError{Field: "chunk_size", Message: fmt.Sprintf("must be an integer between 1 and %d (0 or absent: %d)", neo4jpool.MaxChunkSize, neo4jpool.DefaultChunkSize)}
		}
		p.ChunkSize = int(f)
	}
	return p, nil
}

// Scan runs the built-in "scan" operation (in this process in local
// mode, on the server in remote mode) and waits for its result. A
// subscription read only in part is not an error: its
// SubscriptionResult says so (Complete false, Error). Cancelling ctx
// stops waiting, not the operation; use Submit and Cancel for that.
func (c *Client) Scan(ctx context.Context, p ScanParams) (ScanResult, error) {
	return c.ScanWithProgress(ctx, p, nil)
}

// ScanWithProgress is Scan calling onProgress (if not nil) with each
// progress report (phases subscriptions, resources, nodes, edges, prune).
func (c *Client) ScanWithProgress(ctx context.Context, p ScanParams, onProgress func(operations.Progress)) (ScanResult, error) {
	var res ScanResult
	raw, err := c.Run(ctx, ScanTypeName, p, onProgress)
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return res, fmt.Errorf("atg: decode scan result: %w", err)
	}
	return res, nil
}
