package backupstore

import (
	"context"
	"fmt"
	"syscall"

	"github.com/insightops/insightops/shared/bus"
)

// Usage is how full a store is: the bytes used and the most it can hold
// (bus.Unlimited when nothing bounds it).
type Usage struct {
	Used  int64
	Limit int64
}

// Usage of a local store is that of the filesystem under BACKUP_DIR (what
// else writes there counts too: it is the space the next archive needs).
func (l *Local) Usage(context.Context) (Usage, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(l.dir, &st); err != nil {
		return Usage{}, fmt.Errorf("backup store usage: statfs %s: %w", l.dir, err)
	}
	size := int64(st.Blocks) * st.Bsize
	return Usage{Used: size - int64(st.Bavail)*st.Bsize, Limit: size}, nil
}

// Usage of the NATS store is that of the bucket's stream OBJ_BACKUPS
// against its MaxBytes or the account's storage limit.
func (n *NATS) Usage(ctx context.Context) (Usage, error) {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	used, limit, err := bus.StreamUsage(ctx, n.js, "OBJ_"+bus.BucketBackups)
	if err != nil {
		return Usage{}, fmt.Errorf("backup store usage: %w", err)
	}
	return Usage{Used: used, Limit: limit}, nil
}

// UsageOf returns s's usage when s can tell it (Local and NATS can).
func UsageOf(ctx context.Context, s Store) (Usage, bool, error) {
	u, ok := s.(interface {
		Usage(context.Context) (Usage, error)
	})
	if !ok {
		return Usage{}, false, nil
	}
	got, err := u.Usage(ctx)
	return got, true, err
}
