package httpapi

import (
	"context"
	"fmt"
	"time"

	"github.com/insightops/insightops/shared/backupstore"
)

// drillHealth is the "last_drill" component: the newest restore drill
// recorded in any archive's Meta (backup.verify with drill set, submitted
// on BACKUP_DRILL_SCHEDULE). Disabled without the schedule; ok when that
// drill passed and the schedule has not ticked twice since; degraded when
// it failed, is overdue (two ticks passed without a newer one: the
// drills stopped), when archives exist since two ticks and none was ever
// drilled, or when the store cannot be read. It never fails the request.
func (s *Server) drillHealth(ctx context.Context, now time.Time) Component {
	sched := s.cfg.BackupDrillSchedule
	if sched.IsZero() {
		return Component{Status: StatusDisabled, Detail: "BACKUP_DRILL_SCHEDULE is not set"}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	st, err := s.backupStore(ctx)
	if err != nil {
		return Component{Status: StatusDegraded, Detail: "backup store unavailable: " + err.Error(), LatencyMS: ms(time.Since(start))}
	}
	infos, err := st.List(ctx)
	c := Component{LatencyMS: ms(time.Since(start))}
	if err != nil {
		c.Status, c.Detail = StatusDegraded, "cannot list backups in "+st.Describe()+": "+err.Error()
		return c
	}
	// overdue: the schedule ticked at least twice after t.
	overdue := func(t time.Time) bool {
		next := sched.Next(t)
		return !next.IsZero() && !sched.Next(next).After(now)
	}
	var last *backupstore.Verification
	var drilled string
	oldest := time.Time{}
	for _, in := range infos {
		if d := in.Meta.Drill; d != nil && (last == nil || d.VerifiedAt.After(last.VerifiedAt)) {
			last, drilled = d, in.Name
		}
		oldest = in.Created // List is newest first
	}
	if last == nil {
		if len(infos) > 0 && overdue(oldest) {
			c.Status, c.Detail = StatusDegraded, fmt.Sprintf("no restore drill recorded, although archives exist since %s (BACKUP_DRILL_SCHEDULE %s)", oldest.UTC().Format(time.RFC3339), sched)
		} else {
			c.Status, c.Detail = StatusOK, "no restore drill yet"
		}
		return c
	}
	at := last.VerifiedAt.UTC()
	c.VerifiedAt = &at
	switch {
	case last.Outcome != backupstore.OutcomePassed:
		c.Status, c.Detail = StatusDegraded, fmt.Sprintf("the last restore drill (%s, %s) failed: %s", drilled, at.Format(time.RFC3339), last.Error)
	case overdue(at):
		c.Status, c.Detail = StatusDegraded, fmt.Sprintf("the last restore drill (%s) passed at %s, but none since (BACKUP_DRILL_SCHEDULE %s)", drilled, at.Format(time.RFC3339), sched)
	default:
		c.Status, c.Detail = StatusOK, fmt.Sprintf("the last restore drill (%s) passed at %s", drilled, at.Format(time.RFC3339))
	}
	return c
}
