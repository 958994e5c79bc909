//go:build !unix

package auth

import (
	"context"
	"sync"
)

// fileLocks serialises writers within this process on platforms without
// flock. Writers in other processes are NOT excluded there: run one writer
// (the server or a keys command) at a time.
var fileLocks sync.Map // path -> *sync.Mutex

// lockFile takes an in-process lock for path (see fileLocks). ctx is not
// consulted.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	m, _ := fileLocks.LoadOrStore(path, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock, nil
}

// syncDir is a no-op where directories can't be synced.
func syncDir(dir string) error { return nil }
