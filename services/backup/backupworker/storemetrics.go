package backupworker

import (
	"context"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/metrics"
)

// registerStoreMetrics exports the backup store's usage against its limit,
// its archive count and its newest archive's time (see
// metrics.RegisterBackupStore), read at scrape time from the store
// BACKUP_STORE names, opened on the first scrape.
func registerStoreMetrics(deps app.Deps) {
	w := New(deps, Options{})
	err := metrics.RegisterBackupStore(func(ctx context.Context) (metrics.BackupStoreStats, error) {
		return storeStats(ctx, w)
	})
	if err != nil {
		deps.Log.Warn("backup store metrics", "err", err)
	}
}

func storeStats(ctx context.Context, w *Worker) (metrics.BackupStoreStats, error) {
	st, err := w.Store(ctx)
	if err != nil {
		return metrics.BackupStoreStats{}, err
	}
	list, err := st.List(ctx)
	if err != nil {
		return metrics.BackupStoreStats{}, err
	}
	s := metrics.BackupStoreStats{Archives: len(list), LimitBytes: bus.Unlimited}
	if len(list) > 0 {
		s.Newest = list[0].Created // List is newest first
	}
	u, ok, err := backupstore.UsageOf(ctx, st)
	if err != nil {
		return metrics.BackupStoreStats{}, err
	}
	if ok {
		s.UsedBytes, s.LimitBytes = u.Used, u.Limit
	}
	return s, nil
}
