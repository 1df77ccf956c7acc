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

// completeRun is a clean result for every expected fault and load, plus
// one fuzz target, with the named fault replaced by f when f is not nil.
func completeRun(replace ...reliability.Fault) []reliability.Result {
	var out []reliability.Result
	byName := map[string]reliability.Fault{}
	for _, f := range replace {
		byName[f.Name] = f
	}
	for _, name := range reliability.ExpectedFaults {
		f := cleanFault()
		f.Name = name
		if r, ok := byName[name]; ok {
			f = r
		}
		out = append(out, reliability.Result{Fault: &f})
	}
	out = append(out, reliability.Result{Load: new(cleanLoad())}, reliability.Result{Fuzz: new(cleanFuzz())})
	return out
}

// without drops the results whose fault or load is named name.
func without(rs []reliability.Result, name string) []reliability.Result {
	var out []reliability.Result
	for _, r := range rs {
		if (r.Fault != nil && r.Fault.Name == name) || (r.Load != nil && r.Load.Name == name) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// TestReportExitCodeAndRows writes sample results the way the tests do
// (reliability.Write into RELIABILITY_OUT), runs the report on them and
// checks its exit code and that each result's row and each problem is in
// the Markdown. Every failure mode of the gate has a case: an empty run, a
// missing fault, load or fuzz result, the accounting identity broken, too
// few audit events expected, a lost or duplicated job or audit event, a
// count below its minimum, load errors or no load, a failed fuzz target or
// step.
func TestReportExitCodeAndRows(t *testing.T) {
	lostFault := cleanFault()
	lostFault.Lost, lostFault.Succeeded = 1, 49
	dupFault := cleanFault()
	dupFault.Duplicated = 2
	auditLost := cleanFault()
	auditLost.AuditFound = 149
	auditDup := cleanFault()
	auditDup.AuditDuplicated = 1
	unaccounted := cleanFault() // 50 submitted, 10 succeeded, nothing lost: the review's example
	unaccounted.Succeeded, unaccounted.AuditExpected, unaccounted.AuditFound = 10, 0, 0
	noAudit := cleanFault()
	noAudit.AuditExpected, noAudit.AuditFound = 0, 0
	noJobs := cleanFault()
	noJobs.Submitted, noJobs.Succeeded, noJobs.AuditExpected, noJobs.AuditFound = 0, 0, 0, 0
	fewKills := cleanFault()
	fewKills.Name = reliability.FaultWorkerSigkill
	fewKills.Counts = map[string]int{"kills_mid_job": 1, "redelivered_completed": 2}
	fewKills.Minimums = map[string]int{"kills_mid_job": 3, "redelivered_completed": 1}
	enoughKills := fewKills
	enoughKills.Counts = map[string]int{"kills_mid_job": 3, "redelivered_completed": 1}
	failedFuzz := cleanFuzz()
	failedFuzz.Failed = true
	loadErrors := cleanLoad()
	loadErrors.Errors = 3
	idleLoad := cleanLoad()
	idleLoad.Requests, idleLoad.JobsDone = 0, 0

	withLoad := func(l reliability.Load) []reliability.Result {
		return append(without(completeRun(), reliability.LoadAPISubmitPoll), reliability.Result{Load: &l})
	}
	withFuzz := func(f reliability.Fuzz) []reliability.Result {
		return append(completeRun()[:len(completeRun())-1], reliability.Result{Fuzz: &f})
	}
	ls := reliability.FaultLeaderShutdown
	cases := []struct {
		name     string
		results  []reliability.Result
		steps    []Step
		wantExit int
		want     []string // substrings of the report
	}{
		{"clean run", completeRun(),
			[]Step{{"fault, schedule and load tests", 0}, {"fuzzing", 0}}, 0,
			[]string{"**Outcome: PASS**", "### leader-shutdown", "### worker-sigkill-nats", "| 50 | 50 | 0 | 0 | 0 | 0 | 150 | 150 | 0 | 42s |", "node n2 caught up in 1.2s",
				"### api-submit-poll", "| 1m0s | 32693 | 0 | 10618 | 176.8 | 4.24ms | 60.83ms | 187ms | 71 → 71 | 9.0 MiB → 27.0 MiB |",
				"| shared/backupfmt | FuzzExtract | 1m0s | 123456 | pass |", "`make reliability FUZZTIME=60s`", "CPUs (nproc)"}},
		{"no results", nil, nil, 1, []string{"**Outcome: FAIL**", "no result written: the run is empty", "fault leader-shutdown: no result written",
			"load api-submit-poll: no result written", "no fuzz result written", "No fault results were written."}},
		{"a missing fault", without(completeRun(), reliability.FaultWorkerSigkill), nil, 1,
			[]string{"fault worker-sigkill: no result written (test skipped, renamed or not run)"}},
		{"a missing load", without(completeRun(), reliability.LoadAPISubmitPoll), nil, 1, []string{"load api-submit-poll: no result written"}},
		{"no fuzz result", completeRun()[:len(completeRun())-1], nil, 1, []string{"no fuzz result written"}},
		{"a lost job", completeRun(named(lostFault, ls)), nil, 1, []string{"**Outcome: FAIL**", "fault leader-shutdown: 1 job(s) lost", "| 50 | 49 | 0 | 0 | 1 | 0 |"}},
		{"a duplicated job", completeRun(named(dupFault, ls)), nil, 1, []string{"2 job(s) duplicated"}},
		{"a lost audit event", completeRun(named(auditLost, ls)), nil, 1, []string{"1 audit event(s) lost (149 of 150 found)"}},
		{"a duplicated audit event", completeRun(named(auditDup, ls)), nil, 1, []string{"1 audit event(s) duplicated"}},
		{"jobs unaccounted for", completeRun(named(unaccounted, ls)), nil, 1,
			[]string{"fault leader-shutdown: 50 submitted but 10 accounted for (succeeded 10 + failed 0 + cancelled 0 + lost 0)",
				"fault leader-shutdown: 0 audit event(s) expected for 50 jobs"}},
		{"no audit event expected", completeRun(named(noAudit, ls)), nil, 1, []string{"0 audit event(s) expected for 50 jobs (want at least one per job)"}},
		{"no job submitted", completeRun(named(noJobs, ls)), nil, 1, []string{"fault leader-shutdown: no job submitted"}},
		{"a count below its minimum", completeRun(fewKills), nil, 1,
			[]string{"fault worker-sigkill: kills_mid_job 1, want at least 3", "- kills_mid_job: 1 (required: at least 3)"}},
		{"counts at their minimum", completeRun(enoughKills), nil, 0,
			[]string{"**Outcome: PASS**", "- kills_mid_job: 3 (required: at least 3)", "- redelivered_completed: 1 (required: at least 1)"}},
		{"a failed fuzz target", withFuzz(failedFuzz), nil, 1, []string{"**FAILED**", "shared/backupfmt/testdata/fuzz/FuzzExtract"}},
		{"load errors", withLoad(loadErrors), nil, 1, []string{"load api-submit-poll: 3 error(s)"}},
		{"a load that ran nothing", withLoad(idleLoad), nil, 1, []string{"load api-submit-poll: 0 request(s), 0 job(s) done"}},
		{"a failed step", completeRun(), []Step{{"fault, schedule and load tests", 1}}, 1,
			[]string{`step "fault, schedule and load tests" exited 1`}},
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
			if c.wantExit == 0 && strings.Contains(string(md), "Outcome: FAIL") {
				t.Errorf("exit 0 with a FAIL report:\n%s", md)
			}
		})
	}
}

// named returns f renamed to name.
func named(f reliability.Fault, name string) reliability.Fault {
	f.Name = name
	return f
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
