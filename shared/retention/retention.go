// Package retention decides which backup archives retention keeps: the
// rule of backup.prune, as one pure function of the policy and the
// archives (no clock, no store), so that its table tests run on fixed
// dates.
//
// The policy (config.Retention) is grandfather-father-son, as restic's
// forget:
//
//   - keep-last N (BACKUP_RETENTION_COUNT): the N newest archives;
//   - keep-daily/-weekly/-monthly N: for each of the last N days (ISO
//     weeks, months) that have an archive, the newest archive of it;
//     periods without an archive do not count;
//   - keep-within D: every archive made within D of the newest archive
//     (not of now: when backups stop, pruning does not eat the last
//     generations);
//
// and, whatever the policy, pinned archives and the newest verified
// archive are kept. Periods are calendar periods in UTC. An archive is
// kept when any rule keeps it; every rule that keeps it is named.
package retention

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobspec"
)

// Reasons an archive is kept: jobspec.KeptNewest, KeptNewestVerified and
// KeptPinned, and these formats of the dated rules.
const (
	keptDaily   = "newest of day %s (BACKUP_RETENTION_DAILY)"
	keptWeekly  = "newest of week %s (BACKUP_RETENTION_WEEKLY)"
	keptMonthly = "newest of month %s (BACKUP_RETENTION_MONTHLY)"
	keptWithin  = "within %s of the newest archive (BACKUP_RETENTION_WITHIN)"
)

// Archive is what the rule looks at of one archive.
type Archive struct {
	Name     string
	Created  time.Time // the manifest's created_at
	Pinned   bool
	Verified bool
}

// Decision is the rule's verdict on one archive.
type Decision struct {
	Archive
	Keep bool
	// Reasons name every rule that keeps it; for an archive that goes,
	// one reason saying that no rule keeps it under which policy.
	Reasons []string
}

// Reason is the reasons joined, for a one-line answer.
func (d Decision) Reason() string { return strings.Join(d.Reasons, "; ") }

// Apply decides every archive under policy p. The decisions are newest
// first (by Created, then name); archives are not modified.
func Apply(p config.Retention, archives []Archive) []Decision {
	ds := make([]Decision, len(archives))
	for i, a := range archives {
		ds[i] = Decision{Archive: a}
	}
	sort.SliceStable(ds, func(i, j int) bool {
		if !ds[i].Created.Equal(ds[j].Created) {
			return ds[i].Created.After(ds[j].Created)
		}
		return ds[i].Name > ds[j].Name
	})
	keep := func(d *Decision, reason string) {
		d.Keep = true
		d.Reasons = append(d.Reasons, reason)
	}
	for i := range ds {
		if i < p.Last {
			keep(&ds[i], jobspec.KeptNewest)
		}
	}
	for _, b := range []struct {
		n      int
		format string
		period func(time.Time) string
	}{
		{p.Daily, keptDaily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{p.Weekly, keptWeekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%04d-W%02d", y, w) }},
		{p.Monthly, keptMonthly, func(t time.Time) string { return t.Format("2006-01") }},
	} {
		left, last := b.n, ""
		for i := range ds {
			if left == 0 {
				break
			}
			if period := b.period(ds[i].Created.UTC()); period != last {
				keep(&ds[i], fmt.Sprintf(b.format, period))
				last = period
				left--
			}
		}
	}
	if p.Within > 0 && len(ds) > 0 {
		since := ds[0].Created.Add(-p.Within)
		for i := range ds {
			if !ds[i].Created.Before(since) {
				keep(&ds[i], fmt.Sprintf(keptWithin, p.Within))
			}
		}
	}
	verified := false
	for i := range ds {
		if ds[i].Pinned {
			keep(&ds[i], jobspec.KeptPinned)
		}
		if ds[i].Verified && !verified {
			verified = true
			if !ds[i].Keep {
				keep(&ds[i], jobspec.KeptNewestVerified)
			}
		}
	}
	for i := range ds {
		if !ds[i].Keep {
			ds[i].Reasons = []string{"no rule keeps it (" + p.String() + ")"}
		}
	}
	return ds
}
