// Package reliability is the common record of the fault, load, schedule and
// fuzz runs behind `make reliability`: each test counts what it submitted,
// what completed and what was lost or duplicated, and writes one JSON file
// into RELIABILITY_OUT (when set); cmd/reliabilityreport turns the files of
// one run into docs/RELIABILITY.md.
package reliability

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"time"
)

// EnvOut names the directory results are written to; unset, nothing is written.
const EnvOut = "RELIABILITY_OUT"

// EnvFull names the variable, set to 1 by `make reliability`, that asks
// tests for their full-size run (e.g. a 60 s load test); unset, they run the shorter CI version.
const EnvFull = "RELIABILITY_FULL"

// Full reports whether the full-size run was asked for.
func Full() bool {
	v, _ := strconv.ParseBool(os.Getenv(EnvFull))
	return v
}

// The names of the results a complete `make reliability` run writes: the
// tests use these constants for their result names, and cmd/reliabilityreport
// fails a run that lacks any of them (a partial run, or a test renamed or
// skipped), so this is the one list of what the reliability gate covers.
const (
	FaultBackupDiskFull          = "backup-disk-full"
	FaultLeaderShutdown          = "leader-shutdown"
	FaultNATSUnreachable         = "nats-unreachable"
	FaultScheduleThreeReplicas   = "schedule-three-replicas"
	FaultScheduleThreeReplicasPG = "schedule-three-replicas-postgres"
	FaultWorkerSigkill           = "worker-sigkill"
	FaultWorkerSigkillNATS       = "worker-sigkill-nats"
	LoadAPISubmitPoll            = "api-submit-poll"
)

// ExpectedFaults are the fault results a complete run holds.
var ExpectedFaults = []string{
	FaultBackupDiskFull, FaultLeaderShutdown, FaultNATSUnreachable,
	FaultScheduleThreeReplicas, FaultScheduleThreeReplicasPG,
	FaultWorkerSigkill, FaultWorkerSigkillNATS,
}

// ExpectedLoads are the load results a complete run holds.
var ExpectedLoads = []string{LoadAPISubmitPoll}

// Fault is the outcome of one fault-injection test.
type Fault struct {
	// Name is a short stable identifier, e.g. "leader-shutdown".
	Name string `json:"name"`
	// Fault says what was done, e.g. "JOBS stream leader shut down mid-run, restarted".
	Fault string `json:"fault"`
	// Setup says what ran, e.g. "3-node cluster, R3, API + 2 replicas per worker kind".
	Setup string `json:"setup"`

	Submitted  int `json:"jobs_submitted"`
	Succeeded  int `json:"jobs_succeeded"`
	Failed     int `json:"jobs_failed"`
	Cancelled  int `json:"jobs_cancelled"`
	Lost       int `json:"jobs_lost"`
	Duplicated int `json:"jobs_duplicated"`

	AuditExpected   int `json:"audit_expected"`
	AuditFound      int `json:"audit_found"`
	AuditDuplicated int `json:"audit_duplicated"`

	// Counts are named figures the report checks against a minimum (e.g.
	// "kills_mid_job" of the worker-kill fault); see Fault.Minimums.
	Counts map[string]int `json:"counts,omitempty"`
	// Minimums are the least value each named count must reach for the
	// fault to pass (set by the test from its configuration).
	Minimums map[string]int `json:"minimums,omitempty"`

	Duration time.Duration `json:"duration_ns"`
	// Notes are extra measured facts ("node n2 caught up to seq 4312 in 1.2s").
	Notes []string `json:"notes,omitempty"`
}

// Problems lists what makes the fault's outcome a failure: no job
// submitted, the accounting identity submitted = succeeded + failed +
// cancelled + lost broken, a lost or duplicated job or audit event, fewer
// audit events expected than jobs submitted (every job writes at least its
// final event, so an expected count below that means the test did not
// count them), or a count below its minimum.
func (f Fault) Problems() []string {
	var out []string
	p := func(format string, args ...any) {
		out = append(out, fmt.Sprintf("fault %s: ", f.Name)+fmt.Sprintf(format, args...))
	}
	if f.Submitted <= 0 {
		p("no job submitted")
	}
	if sum := f.Succeeded + f.Failed + f.Cancelled + f.Lost; sum != f.Submitted {
		p("%d submitted but %d accounted for (succeeded %d + failed %d + cancelled %d + lost %d)",
			f.Submitted, sum, f.Succeeded, f.Failed, f.Cancelled, f.Lost)
	}
	if f.Lost > 0 {
		p("%d job(s) lost", f.Lost)
	}
	if f.Duplicated > 0 {
		p("%d job(s) duplicated", f.Duplicated)
	}
	if f.AuditDuplicated > 0 {
		p("%d audit event(s) duplicated", f.AuditDuplicated)
	}
	if f.Submitted > 0 && f.AuditExpected < f.Submitted {
		p("%d audit event(s) expected for %d jobs (want at least one per job)", f.AuditExpected, f.Submitted)
	}
	if f.AuditFound < f.AuditExpected {
		p("%d audit event(s) lost (%d of %d found)", f.AuditExpected-f.AuditFound, f.AuditFound, f.AuditExpected)
	}
	names := make([]string, 0, len(f.Minimums))
	for n := range f.Minimums {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if got, want := f.Counts[n], f.Minimums[n]; got < want {
			p("%s %d, want at least %d", n, got, want)
		}
	}
	return out
}

// Load is the outcome of a load run.
type Load struct {
	Name        string        `json:"name"`
	Duration    time.Duration `json:"duration_ns"`
	Requests    int           `json:"requests"`
	Errors      int           `json:"errors"`
	Throughput  float64       `json:"throughput_per_s"`
	P50         time.Duration `json:"p50_ns"`
	P99         time.Duration `json:"p99_ns"`
	Max         time.Duration `json:"max_ns"`
	JobsDone    int           `json:"jobs_done"`
	GoroutinesB int           `json:"goroutines_before"`
	GoroutinesA int           `json:"goroutines_after"`
	HeapB       uint64        `json:"heap_before_bytes"`
	HeapA       uint64        `json:"heap_after_bytes"`
	Notes       []string      `json:"notes,omitempty"`
}

// Fuzz is the outcome of one fuzz target's run.
type Fuzz struct {
	Package  string        `json:"package"`
	Target   string        `json:"target"`
	Duration time.Duration `json:"duration_ns"`
	Execs    int64         `json:"execs"`
	Failed   bool          `json:"failed"`
}

// Result is one file of a run: exactly one of its fields is set.
type Result struct {
	Fault *Fault `json:"fault,omitempty"`
	Load  *Load  `json:"load,omitempty"`
	Fuzz  *Fuzz  `json:"fuzz,omitempty"`
}

// TB is the part of testing.TB Write needs.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Write logs r and, when RELIABILITY_OUT is set, writes it as
// <kind>-<name>.json there. A write failure fails the test.
func Write(t TB, r Result) {
	t.Helper()
	var kind, name string
	switch {
	case r.Fault != nil:
		kind, name = "fault", r.Fault.Name
	case r.Load != nil:
		kind, name = "load", r.Load.Name
	case r.Fuzz != nil:
		kind, name = "fuzz", r.Fuzz.Package+"."+r.Fuzz.Target
	default:
		t.Errorf("reliability.Write: empty result")
		return
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Errorf("reliability.Write: %v", err)
		return
	}
	t.Logf("reliability %s: %s", kind, data)
	dir := os.Getenv(EnvOut)
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("reliability.Write: %v", err)
		return
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.json", kind, unsafeName.ReplaceAllString(name, "_")))
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		t.Errorf("reliability.Write: %v", err)
	}
}
