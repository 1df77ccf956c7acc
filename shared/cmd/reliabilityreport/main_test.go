package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/reliability"
)

// recordingTB collects what reliability.Write reports.
type recordingTB struct{ t *testing.T }

func (r recordingTB) Helper()                           {}
func (r recordingTB) Logf(string, ...any)               {}
func (r recordingTB) Errorf(format string, args ...any) { r.t.Errorf(format, args...) }

func cleanFault() reliability.Fault {
	return reliability.Fault{
		Name: "leader-shutdown", Fault: "JOBS stream leader shut down mid-run", Setup: "3-node cluster, R3",
		Submitted: 50, Succeeded: 50, AuditExpected: 150, AuditFound: 150, Duration: 42 * time.Second,
		Notes: []string{"node n2 caught up in 1.2s"},
	}
}

func cleanLoad() reliability.Load {
	return reliability.Load{
		Name: "api-submit-poll", Duration: 60 * time.Second, Requests: 32693, JobsDone: 10618, Throughput: 176.8,
		P50: 4240 * time.Microsecond, P99: 60830 * time.Microsecond, Max: 187 * time.Millisecond,
		GoroutinesB: 71, GoroutinesA: 71, HeapB: 9 << 20, HeapA: 27 << 20,
	}
}

func cleanFuzz() reliability.Fuzz {
	return reliability.Fuzz{Package: "shared/backupfmt", Target: "FuzzExtract", Duration: time.Minute, Execs: 123456}
}

// TestReportExitCodeAndRows writes sample results the way the tests do
// (reliability.Write into RELIABILITY_OUT), runs the report on them and
// checks its exit code and that each result's row is in the Markdown.
func TestReportExitCodeAndRows(t *testing.T) {
	lostFault := cleanFault()
	lostFault.Lost, lostFault.Succeeded = 1, 49
	dupFault := cleanFault()
	dupFault.Duplicated = 2
	auditLost := cleanFault()
	auditLost.AuditFound = 149
	auditDup := cleanFault()
	auditDup.AuditDuplicated = 1
	failedFuzz := cleanFuzz()
	failedFuzz.Failed = true
	loadErrors := cleanLoad()
	loadErrors.Errors = 3

	cases := []struct {
		name     string
		results  []reliability.Result
		steps    []Step
		wantExit int
		want     []string // substrings of the report
	}{
		{"clean run", []reliability.Result{{Fault: new(cleanFault())}, {Load: new(cleanLoad())}, {Fuzz: new(cleanFuzz())}},
			[]Step{{"fault, schedule and load tests", 0}, {"fuzzing", 0}}, 0,
			[]string{"**Outcome: PASS**", "### leader-shutdown", "| 50 | 50 | 0 | 0 | 0 | 0 | 150 | 150 | 0 | 42s |", "node n2 caught up in 1.2s",
				"### api-submit-poll", "| 1m0s | 32693 | 0 | 10618 | 176.8 | 4.24ms | 60.83ms | 187ms | 71 → 71 | 9.0 MiB → 27.0 MiB |",
				"| shared/backupfmt | FuzzExtract | 1m0s | 123456 | pass |", "`make reliability FUZZTIME=60s`", "CPUs (nproc)"}},
		{"a lost job", []reliability.Result{{Fault: new(lostFault)}}, nil, 1, []string{"**Outcome: FAIL**", "fault leader-shutdown: 1 job(s) lost", "| 50 | 49 | 0 | 0 | 1 | 0 |"}},
		{"a duplicated job", []reliability.Result{{Fault: new(dupFault)}}, nil, 1, []string{"2 job(s) duplicated"}},
		{"a lost audit event", []reliability.Result{{Fault: new(auditLost)}}, nil, 1, []string{"1 audit event(s) lost (149 of 150 found)"}},
		{"a duplicated audit event", []reliability.Result{{Fault: new(auditDup)}}, nil, 1, []string{"1 audit event(s) duplicated"}},
		{"a failed fuzz target", []reliability.Result{{Fuzz: new(failedFuzz)}}, nil, 1, []string{"**FAILED**", "shared/backupfmt/testdata/fuzz/FuzzExtract"}},
		{"load errors", []reliability.Result{{Load: new(loadErrors)}}, nil, 1, []string{"load api-submit-poll: 3 error(s)"}},
		{"a failed step", []reliability.Result{{Fault: new(cleanFault())}}, []Step{{"fault, schedule and load tests", 1}}, 1,
			[]string{`step "fault, schedule and load tests" exited 1`}},
		{"no results", nil, nil, 0, []string{"No fault results were written.", "No load results were written.", "No fuzz results were written."}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := t.TempDir()
			t.Setenv(reliability.EnvOut, in)
			for _, r := range c.results {
				reliability.Write(recordingTB{t}, r)
			}
			out := filepath.Join(t.TempDir(), "docs", "RELIABILITY.md")
			var stderr bytes.Buffer
			if got := run(in, out, "make reliability FUZZTIME=60s", c.steps, &stderr); got != c.wantExit {
				t.Errorf("exit %d, want %d; stderr:\n%s", got, c.wantExit, stderr.String())
			}
			md, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("no report: %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(string(md), w) {
					t.Errorf("report lacks %q:\n%s", w, md)
				}
			}
		})
	}
}

// TestReportRefusesAMalformedResult: a result file that is not a
// reliability.Result fails the report instead of being skipped.
func TestReportRefusesAMalformedResult(t *testing.T) {
	for name, content := range map[string]string{"not JSON": "{", "empty result": "{}"} {
		t.Run(name, func(t *testing.T) {
			in := t.TempDir()
			if err := os.WriteFile(filepath.Join(in, "fault-x.json"), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			if got := run(in, filepath.Join(t.TempDir(), "R.md"), "make reliability", nil, &stderr); got == 0 {
				t.Errorf("exit 0 for %q", content)
			}
		})
	}
}
