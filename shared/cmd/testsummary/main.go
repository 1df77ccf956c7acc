// Command testsummary reads `go test -json` output on stdin and prints it
// the way a plain `go test` run reads: one line per package, the full
// output of every failed test, package and build failure; then a summary
// with how many tests passed, failed and skipped, and each skipped test
// with its reason. It exits 1 when a test, package or build failed, or when
// the CI variable is set and any test skipped (under CI every test must
// run: testkit.Unavailable fails there, so a skip is a bare t.Skip).
// `make test` pipes `go test -json` into it with pipefail, so go test's own
// exit status is kept.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent, plus
// the build events of go1.24+).
type event struct {
	Action     string
	Package    string
	ImportPath string
	Test       string
	Elapsed    float64
	Output     string
}

// Skip is a skipped test and the output that says why.
type Skip struct {
	Package, Test, Reason string
}

// Summary is what a run counted.
type Summary struct {
	Passed, Failed, Skipped    int
	PackagesOK, PackagesFailed int
	BuildFailed                int
	Skips                      []Skip
}

type key struct{ pkg, test string }

// Summarize copies r's events to w in `go test` form and counts them.
func Summarize(r io.Reader, w io.Writer) (Summary, error) {
	var s Summary
	out := map[key]*strings.Builder{}
	buf := func(k key) *strings.Builder {
		b := out[k]
		if b == nil {
			b = &strings.Builder{}
			out[k] = b
		}
		return b
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line) // not an event: go's own messages
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "build-output":
			fmt.Fprint(w, e.Output)
		case "build-fail":
			s.BuildFailed++
		case "output":
			buf(k).WriteString(e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				s.packageDone(w, e, out)
				continue
			}
			switch e.Action {
			case "pass":
				s.Passed++
			case "fail":
				s.Failed++
				fmt.Fprint(w, buf(k).String())
			case "skip":
				s.Skipped++
				s.Skips = append(s.Skips, Skip{Package: e.Package, Test: e.Test, Reason: skipReason(buf(k).String())})
			}
			delete(out, k)
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read go test -json: %w", err)
	}
	return s, nil
}

// packageDone prints a package's result line; on failure also its own
// output and that of every test of it that never finished (a timeout or
// a panic ends the binary with tests still running).
func (s *Summary) packageDone(w io.Writer, e event, out map[key]*strings.Builder) {
	own := ""
	if b := out[key{e.Package, ""}]; b != nil {
		own = b.String()
	}
	if e.Action == "fail" {
		s.PackagesFailed++
		var running []string
		for k := range out {
			if k.pkg == e.Package && k.test != "" {
				running = append(running, k.test)
			}
		}
		sort.Strings(running)
		for _, t := range running {
			fmt.Fprint(w, out[key{e.Package, t}].String())
		}
		fmt.Fprint(w, own)
	} else {
		if e.Action == "pass" {
			s.PackagesOK++
		}
		// The package's closing line ("ok  pkg 1.2s", "?  pkg [no test files]").
		for _, l := range strings.SplitAfter(own, "\n") {
			if strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "?") {
				fmt.Fprint(w, l)
			}
		}
	}
	for k := range out {
		if k.pkg == e.Package {
			delete(out, k)
		}
	}
}

// skipReason is the part of a skipped test's output that says why: its
// log lines, without the === and --- framing lines.
func skipReason(output string) string {
	var keep []string
	for _, l := range strings.Split(output, "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		keep = append(keep, t)
	}
	return strings.Join(keep, " ")
}

// Report prints the summary and returns the exit status: 1 when anything
// failed, or when ci is true and a test skipped.
func Report(w io.Writer, s Summary, ci bool) int {
	fmt.Fprintf(w, "\ntests: %d passed, %d failed, %d skipped; packages: %d ok, %d failed", s.Passed, s.Failed, s.Skipped, s.PackagesOK, s.PackagesFailed)
	if s.BuildFailed > 0 {
		fmt.Fprintf(w, ", %d build(s) failed", s.BuildFailed)
	}
	fmt.Fprintln(w)
	for _, sk := range s.Skips {
		fmt.Fprintf(w, "  skipped %s %s: %s\n", sk.Package, sk.Test, sk.Reason)
	}
	code := 0
	if s.Failed > 0 || s.PackagesFailed > 0 || s.BuildFailed > 0 {
		code = 1
	}
	if ci && s.Skipped > 0 {
		fmt.Fprintf(w, "CI is set: %d skipped test(s) count as failures (every test must run under CI)\n", s.Skipped)
		code = 1
	}
	return code
}

func main() {
	s, err := Summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	os.Exit(Report(os.Stdout, s, os.Getenv("CI") != ""))
}
