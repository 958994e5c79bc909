package azure

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"sort"
	"strings"
	"sync/atomic"
)

// ErrInventory marks an unreadable or malformed inventory file (see
// [InventoryError]).
var ErrInventory = errors.New("azure: bad inventory file")

// InventoryError is a problem with one inventory file.
type InventoryError struct {
	// File is the file's path ("" for a reader).
	File string
	// Item is the 0-based index of the offending element (-1 when the
	// problem is the file's shape).
	Item int
	// Err is the cause.
	Err error
}

// Error names the file and the item.
func (e *InventoryError) Error() string {
	where := e.File
	if where == "" {
		where = "inventory"
	}
	if e.Item >= 0 {
		where += fmt.Sprintf(", item %d", e.Item)
	}
	return fmt.Sprintf("azure: %s: %v", where, e.Err)
}

// Unwrap returns ErrInventory and the cause.
func (e *InventoryError) Unwrap() []error { return []error{ErrInventory, e.Err} }

// Inventory is an offline [Source] over files written by the Azure CLI,
// for air-gapped use and demos:
//   - `az resource list -o json`: an array of resources;
//   - `az graph query -q "<Table> ..." -o json`: {"data": [...]} (with
//     count, skip_token, total_records as az prints them), or an array.
//
// Files may mix tables; each row's table comes from its type
// (subscriptions and resource groups: ResourceContainers;
// microsoft.authorization role assignments and definitions:
// AuthorizationResources; everything else: Resources). Rows missing
// subscriptionId or resourceGroup (az resource list prints neither) get
// them from their id. Each Rows call streams the files again, holding one
// row at a time.
type Inventory struct {
	files []inventoryFile
	pages atomic.Int64
}

// inventoryFile is a named file, on disk or in memory.
type inventoryFile struct {
	name string
	data []byte // nil: read name from disk
}

func (f inventoryFile) scan(yield func(Row) bool) error {
	if f.data == nil {
		return scanFile(f.name, yield)
	}
	err := ParseInventory(bytes.NewReader(f.data), yield)
	var ie *InventoryError
	if errors.As(err, &ie) {
		ie.File = f.name
	}
	return err
}

// SampleTenantID is the tenant of [SampleInventory].
const SampleTenantID = "d5b9c3a1-6e4f-4b2a-9c8d-7e1f0a3b5c26"

//go:embed testdata/az-resource-list.json
var sampleInventory []byte

// SampleInventory is the bundled demo inventory: `az resource list -o
// json` output of 42 resources in 4 resource groups of 2 subscriptions.
func SampleInventory() *Inventory {
	return &Inventory{files: []inventoryFile{{name: "sample az-resource-list.json", data: sampleInventory}}}
}

// NewInventoryFromBytes is NewInventory over in-memory files (name is
// used in errors only).
func NewInventoryFromBytes(files map[string][]byte) (*Inventory, error) {
	inv := &Inventory{}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := inventoryFile{name: n, data: files[n]}
		if f.data == nil {
			f.data = []byte{}
		}
		if err := f.scan(func(Row) bool { return true }); err != nil {
			return nil, err
		}
		inv.files = append(inv.files, f)
	}
	if len(inv.files) == 0 {
		return nil, &InventoryError{Item: -1, Err: errors.New("no inventory files given")}
	}
	return inv, nil
}

var _ Source = (*Inventory)(nil)

// NewInventory returns an Inventory over paths, after checking that each
// is a readable, well-formed inventory file.
func NewInventory(paths ...string) (*Inventory, error) {
	if len(paths) == 0 {
		return nil, &InventoryError{Item: -1, Err: errors.New("no inventory files given")}
	}
	inv := &Inventory{}
	for _, p := range paths {
		if err := scanFile(p, func(Row) bool { return true }); err != nil {
			return nil, err
		}
		inv.files = append(inv.files, inventoryFile{name: p})
	}
	return inv, nil
}

// Stats counts the files read (as Pages); an Inventory makes no API calls.
func (inv *Inventory) Stats() Stats { return Stats{Pages: inv.pages.Load()} }

// StatsFor is zero: an Inventory makes no API calls, and its files are
// not read per subscription.
func (inv *Inventory) StatsFor(string) Stats { return Stats{} }

// Rows streams the rows of table in the files, for one subscription or
// all when subscription is "".
func (inv *Inventory) Rows(ctx context.Context, table Table, subscription string) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		for _, f := range inv.files {
			stopped := false
			err := f.scan(func(row Row) bool {
				if ctx.Err() != nil {
					return false
				}
				if TableOf(row) != table {
					return true
				}
				if subscription != "" {
					if sub, _ := row["subscriptionId"].(string); !strings.EqualFold(sub, subscription) {
						return true
					}
				}
				if !yield(row, nil) {
					stopped = true
					return false
				}
				return true
			})
			inv.pages.Add(1)
			if stopped {
				return
			}
			if err == nil {
				err = ctx.Err()
			}
			if err != nil {
				yield(nil, err)
				return
			}
		}
	}
}

// TableOf is the Resource Graph table a row belongs to, from its type.
func TableOf(row Row) Table {
	t, _ := row["type"].(string)
	t = strings.ToLower(t)
	switch {
	case t == "microsoft.resources/subscriptions", t == "microsoft.resources/subscriptions/resourcegroups",
		t == "microsoft.resources/resourcegroups", t == "microsoft.management/managementgroups":
		return TableResourceContainers
	case t == "microsoft.authorization/roleassignments", t == "microsoft.authorization/roledefinitions",
		t == "microsoft.authorization/classicadministrators", t == "microsoft.authorization/denyassignments":
		return TableAuthorizationResources
	}
	return TableResources
}

func scanFile(path string, yield func(Row) bool) error {
	f, err := os.Open(path)
	if err != nil {
		return &InventoryError{File: path, Item: -1, Err: err}
	}
	defer f.Close()
	err = ParseInventory(f, yield)
	var ie *InventoryError
	if errors.As(err, &ie) {
		ie.File = path
	}
	return err
}

// ParseInventory streams the rows of one inventory file (see [Inventory])
// to yield, one at a time, until yield returns false. Errors are
// *InventoryError.
func ParseInventory(r io.Reader, yield func(Row) bool) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	bad := func(item int, err error) error { return &InventoryError{Item: item, Err: err} }
	tok, err := dec.Token()
	if err != nil {
		return bad(-1, fmt.Errorf("not JSON: %w", err))
	}
	switch tok {
	case json.Delim('['):
		if _, err := readArray(dec, yield); err != nil {
			return err
		}
	case json.Delim('{'):
		sawData := false
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return bad(-1, err)
			}
			if key, _ := k.(string); key == "data" {
				if sawData {
					return bad(-1, errors.New(`"data" given twice`))
				}
				sawData = true
				t, err := dec.Token()
				if err != nil {
					return bad(-1, err)
				}
				if t != json.Delim('[') {
					return bad(-1, errors.New(`"data" must be an array of rows (az graph query -o json prints objectArray)`))
				}
				if stop, err := readArray(dec, yield); err != nil || stop {
					return err
				}
				continue
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return bad(-1, err)
			}
		}
		if !sawData {
			return bad(-1, errors.New(`an object without "data": expected az resource list (an array) or az graph query ({"data": [...]}) output`))
		}
		if _, err := dec.Token(); err != nil {
			return bad(-1, err)
		}
	default:
		return bad(-1, errors.New("expected an array of resources or an object with \"data\""))
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad(-1, errors.New("data after the end of the JSON document"))
	}
	return nil
}

// readArray reads the elements of an array whose '[' was read, and its
// ']'. stop reports that yield asked to stop.
func readArray(dec *json.Decoder, yield func(Row) bool) (stop bool, err error) {
	for i := 0; dec.More(); i++ {
		var raw any
		if err := dec.Decode(&raw); err != nil {
			return false, &InventoryError{Item: i, Err: err}
		}
		row, ok := raw.(map[string]any)
		if !ok {
			return false, &InventoryError{Item: i, Err: fmt.Errorf("a %T, not a resource object", raw)}
		}
		if err := normalize(row); err != nil {
			return false, &InventoryError{Item: i, Err: err}
		}
		if !yield(row) {
			return true, nil
		}
	}
	if _, err := dec.Token(); err != nil {
		return false, &InventoryError{Item: -1, Err: err}
	}
	return false, nil
}

// normalize checks a row has a string id and type, and fills
// subscriptionId and resourceGroup from the id when missing.
func normalize(row Row) error {
	id, ok := row["id"].(string)
	if !ok || !strings.HasPrefix(id, "/") {
		return errors.New(`no "id" (an ARM id starting with "/")`)
	}
	if _, ok := row["type"].(string); !ok {
		return fmt.Errorf("%s: no \"type\"", id)
	}
	parts := strings.Split(strings.Trim(id, "/"), "/")
	if s, _ := row["subscriptionId"].(string); s == "" && len(parts) >= 2 && strings.EqualFold(parts[0], "subscriptions") {
		row["subscriptionId"] = parts[1]
	}
	if g, _ := row["resourceGroup"].(string); g == "" && len(parts) >= 4 && strings.EqualFold(parts[2], "resourcegroups") {
		row["resourceGroup"] = parts[3]
	}
	return nil
}
