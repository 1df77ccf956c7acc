package backupstore

import (
	"bytes"
	"testing"
)

func TestUsageGrowsWithAnArchiveAndStaysWithinTheLimit(t *testing.T) {
	forEachStore(t, func(t *testing.T, fx fixture) {
		ctx := ctxT(t)
		before, ok, err := UsageOf(ctx, fx.store)
		if err != nil || !ok {
			t.Fatalf("usage: ok=%v err=%v", ok, err)
		}
		if _, err := fx.store.Put(ctx, nameA, bytes.NewReader(randomBytes(256<<10, 1))); err != nil {
			t.Fatal(err)
		}
		after, _, err := UsageOf(ctx, fx.store)
		if err != nil {
			t.Fatal(err)
		}
		if after.Used <= 0 || after.Limit == 0 || (after.Limit > 0 && after.Used > after.Limit) {
			t.Fatalf("usage after a put = %+v: want used > 0 and within a non-zero limit (-1: unlimited)", after)
		}
		if fx.local == nil && after.Used < before.Used+256<<10 {
			// The bucket's bytes are the archive's own (a filesystem's
			// used bytes move with everything else on it).
			t.Fatalf("bucket bytes %d → %d after a 256 KiB archive", before.Used, after.Used)
		}
	})
}
