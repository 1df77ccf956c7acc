package memlimit

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/insightops/insightops/shared/config"
)

func TestForScalesWithJobsAndTheS3Part(t *testing.T) {
	t.Parallel()
	s3 := func(concurrency int, partMiB int64) config.Config {
		c := config.Config{BackupStore: "s3", WorkerConcurrency: concurrency}
		c.BackupS3.PartSize = partMiB << 20
		return c
	}
	tests := []struct {
		name string
		cfg  config.Config
		want int64
	}{
		{"local store, one job", config.Config{BackupStore: "local", WorkerConcurrency: 1}, 40 << 20},
		{"local store, two jobs", config.Config{BackupStore: "local", WorkerConcurrency: 2}, 64 << 20},
		{"nats store, one job", config.Config{BackupStore: "nats", WorkerConcurrency: 1}, 40 << 20},
		{"s3 store, one job, 16 MiB parts", s3(1, 16), 56 << 20},
		{"s3 store, three jobs, 5 MiB parts", s3(3, 5), (16 + 3*29) << 20},
		{"no concurrency set counts as one job", config.Config{}, 40 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := For(tt.cfg); got != tt.want {
				t.Fatalf("For = %d MiB, want %d MiB", got>>20, tt.want>>20)
			}
		})
	}
}

// Apply changes the process-wide limit: these tests are not parallel and
// put the limit back.
func TestApplySetsTheLimitUnlessGOMEMLIMITIsSet(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	cfg := config.Config{BackupStore: "local", WorkerConcurrency: 1}

	limit, src := Apply(cfg, func(string) string { return "" })
	if limit != 40<<20 || src != FromJobs || debug.SetMemoryLimit(-1) != 40<<20 {
		t.Fatalf("Apply without GOMEMLIMIT = %d, %s; runtime limit %d", limit, src, debug.SetMemoryLimit(-1))
	}

	debug.SetMemoryLimit(math.MaxInt64) // as if the runtime had applied GOMEMLIMIT=off
	env := func(k string) string {
		if k == "GOMEMLIMIT" {
			return "off"
		}
		return ""
	}
	limit, src = Apply(cfg, env)
	if limit != math.MaxInt64 || src != FromEnv || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatalf("Apply with GOMEMLIMIT set = %d, %s; runtime limit %d, want the runtime's own left alone", limit, src, debug.SetMemoryLimit(-1))
	}
}
