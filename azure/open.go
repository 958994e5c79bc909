package azure

import "context"

// Open returns the Source a scan reads: an [Inventory] over files when
// any are given (offline; cfg is not used), else a Resource Graph source
// for cfg (see [NewResourceGraphSource]; cfg.TenantID is required).
func Open(ctx context.Context, cfg Config, files ...string) (Source, error) {
	if len(files) > 0 {
		inv, err := NewInventory(files...)
		if err != nil {
			return nil, err
		}
		return inv, nil
	}
	return NewResourceGraphSource(ctx, cfg)
}
