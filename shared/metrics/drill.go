package metrics

import "github.com/prometheus/client_golang/prometheus"

// Restore drills (BACKUP_DRILL_SCHEDULE), exported by the backup worker
// that ran one.
var (
	// BackupDrills counts restore drills by outcome: "passed", "failed"
	// (the archive did not restore or its counts differ from the
	// manifest), "error" (it could not run: no archive, the store
	// unreachable).
	BackupDrills = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "insightops_backup_drills_total", Help: "Restore drills of the newest archive by outcome (passed, failed, error).",
	}, []string{"outcome"})
	// LastBackupDrill is the Unix time of the last restore drill that
	// finished, whatever its outcome.
	LastBackupDrill = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "insightops_backup_last_drill_timestamp_seconds", Help: "Unix time of the last restore drill that finished, whatever its outcome.",
	})
	// LastBackupDrillPassed is 1 when the last restore drill passed, 0
	// when it failed or could not run.
	LastBackupDrillPassed = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "insightops_backup_last_drill_passed", Help: "1 when the last restore drill passed, 0 when it failed or could not run.",
	})
)

// DrillError is the outcome of a drill that could not run, beside the
// verification outcomes "passed" and "failed".
const DrillError = "error"

func init() {
	Registry.MustRegister(BackupDrills, LastBackupDrill, LastBackupDrillPassed)
	for _, o := range []string{"passed", "failed", DrillError} {
		BackupDrills.WithLabelValues(o)
	}
}
