// Package memlimit sets the soft memory limit of the processes that stream
// archives, the backup and restore workers, from the jobs they run at once.
//
// A job's live heap is small and steady (measured on a 1 GB Target DB
// backup: about 25 MB, the compression frames in flight and the encoders;
// plus one multipart part when archives go to S3), but the SQLite driver
// allocates every page it reads, a gigabyte of short-lived garbage per
// gigabyte backed up. With the Go runtime's default (GOGC=100 and no
// limit) the heap then grows to twice the live heap before each
// collection, which put a backup to S3 at 130 MB of peak RSS. A soft limit
// (debug.SetMemoryLimit, what GOMEMLIMIT sets) makes the collector run
// before the heap passes it; the cost is more collections of that small
// live heap (measured: 78 instead of 46 in a 1 GB backup, no change in its
// time).
package memlimit

import (
	"runtime/debug"

	"github.com/insightops/insightops/shared/config"
)

const (
	// Base is the heap a worker process needs besides its jobs: its
	// NATS client, metrics, configuration.
	Base = 16 << 20
	// PerJob is the heap one backup or restore job needs, S3 part
	// excepted, with room for its garbage.
	PerJob = 24 << 20
)

// For returns the soft limit for a worker configured by cfg: Base, plus
// for each of the WorkerConcurrency jobs it runs at once PerJob and, when
// archives go to S3 (BACKUP_STORE=s3), the part an upload holds
// (BACKUP_S3_PART_SIZE_MB).
func For(cfg config.Config) int64 {
	perJob := int64(PerJob)
	if cfg.BackupStore == "s3" {
		perJob += cfg.BackupS3.PartSize
	}
	return Base + int64(max(cfg.WorkerConcurrency, 1))*perJob
}

// Source says where the limit in effect comes from.
type Source string

// The sources of a limit.
const (
	// FromEnv: GOMEMLIMIT is set, and the runtime applied it itself.
	FromEnv Source = "GOMEMLIMIT"
	// FromJobs: For(cfg), set by Apply.
	FromJobs Source = "worker concurrency"
)

// Apply sets For(cfg) as the process's soft memory limit, unless the
// operator set GOMEMLIMIT (read through getenv), which the runtime has
// applied and which is left alone. It returns the limit in effect and its
// source.
func Apply(cfg config.Config, getenv func(string) string) (int64, Source) {
	if getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), FromEnv
	}
	limit := For(cfg)
	debug.SetMemoryLimit(limit)
	return limit, FromJobs
}
