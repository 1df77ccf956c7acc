package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// goTestJSON runs `go test -json` on the sample module of testdata (a
// passing, a failing and a test-less package, skips at top level and in a
// subtest) and returns its output.
func goTestJSON(t *testing.T) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-json", "-count=1", "./...")
	cmd.Dir = "testdata/sample"
	cmd.Env = append(cmd.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("go test -json: %v", err)
	}
	if ee == nil {
		t.Fatalf("go test exited 0 on a module with a failing test:\n%s", out)
	}
	return out
}

func TestSummarizeCountsAndPrintsFailures(t *testing.T) {
	t.Parallel()
	var w bytes.Buffer
	s, err := Summarize(bytes.NewReader(goTestJSON(t)), &w)
	if err != nil {
		t.Fatal(err)
	}
	// ok: TestPasses, TestParent, TestParent/other pass; TestSkips and
	// TestParent/sub skip. bad: TestPasses passes, TestFails fails.
	if s.Passed != 4 || s.Failed != 1 || s.Skipped != 2 || s.PackagesOK != 1 || s.PackagesFailed != 1 {
		t.Errorf("summary %+v, want 4 passed, 1 failed, 2 skipped, 1 package ok, 1 failed", s)
	}
	out := w.String()
	for _, want := range []string{"want 409 lease_held, got 500", "--- FAIL: TestFails", "ok  \tsample/ok", "FAIL\tsample/bad"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "=== RUN   TestPasses") {
		t.Errorf("output of passing tests printed:\n%s", out)
	}
	reasons := map[string]string{}
	for _, sk := range s.Skips {
		reasons[sk.Test] = sk.Reason
	}
	if !strings.Contains(reasons["TestSkips"], "postgres unavailable: connection refused") || !strings.Contains(reasons["TestParent/sub"], "zstd not installed") {
		t.Errorf("skip reasons %v", reasons)
	}
}

func TestReportExitStatus(t *testing.T) {
	t.Parallel()
	skipped := Summary{Passed: 3, Skipped: 1, PackagesOK: 1, Skips: []Skip{{"p", "TestX", "chroma unavailable"}}}
	cases := []struct {
		name string
		s    Summary
		ci   bool
		want int
		line string
	}{
		{"all passed", Summary{Passed: 3, PackagesOK: 1}, true, 0, "tests: 3 passed, 0 failed, 0 skipped; packages: 1 ok, 0 failed"},
		{"a skip outside CI", skipped, false, 0, "skipped p TestX: chroma unavailable"},
		{"a skip under CI", skipped, true, 1, "CI is set: 1 skipped test(s) count as failures"},
		{"a failed test", Summary{Passed: 3, Failed: 1, PackagesFailed: 1}, false, 1, "1 failed"},
		{"a failed package, no failed test", Summary{PackagesFailed: 1}, false, 1, "packages: 0 ok, 1 failed"},
		{"a failed build", Summary{BuildFailed: 1}, false, 1, "1 build(s) failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var w bytes.Buffer
			if got := Report(&w, c.s, c.ci); got != c.want {
				t.Errorf("exit %d, want %d:\n%s", got, c.want, w.String())
			}
			if !strings.Contains(w.String(), c.line) {
				t.Errorf("report lacks %q:\n%s", c.line, w.String())
			}
		})
	}
}
