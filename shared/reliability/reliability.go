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

	Duration time.Duration `json:"duration_ns"`
	// Notes are extra measured facts ("node n2 caught up to seq 4312 in 1.2s").
	Notes []string `json:"notes,omitempty"`
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
