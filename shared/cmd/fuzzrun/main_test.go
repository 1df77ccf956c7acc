package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestParseProgressTakesTheLastProgressLine on real `go test -fuzz` output.
func TestParseProgressTakesTheLastProgressLine(t *testing.T) {
	cases := []struct {
		name  string
		out   string
		d     time.Duration
		execs int64
		ok    bool
	}{
		{"pass", "fuzz: elapsed: 0s, gathering baseline coverage: 0/26 completed\n" +
			"fuzz: elapsed: 3s, gathering baseline coverage: 26/26 completed, now fuzzing with 2 workers\n" +
			"fuzz: elapsed: 30s, execs: 17198 (4249/sec), new interesting: 13 (total: 27)\n" +
			"fuzz: elapsed: 1m1s, execs: 20001 (0/sec), new interesting: 13 (total: 27)\nPASS\nok  \tx\t61.3s\n", 61 * time.Second, 20001, true},
		{"failure", "fuzz: elapsed: 2s, execs: 1024 (512/sec), new interesting: 1 (total: 9)\n--- FAIL: FuzzX (2.10s)\n" +
			"    Failing input written to testdata/fuzz/FuzzX/abc\nFAIL\n", 2 * time.Second, 1024, true},
		{"time out during the baseline", "fuzz: elapsed: 0s, gathering baseline coverage: 0/82 completed\n" +
			"fuzz: elapsed: 3s, gathering baseline coverage: 40/82 completed\nPASS\n", 3 * time.Second, 40, true},
		{"build failure", "# pkg\n./x.go:1: undefined: y\nFAIL\tpkg [build failed]\n", 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, n, ok := ParseProgress([]byte(c.out))
			if d != c.d || n != c.execs || ok != c.ok {
				t.Errorf("got %s %d %v, want %s %d %v", d, n, ok, c.d, c.execs, c.ok)
			}
		})
	}
}

// TestDiscoverFindsTargetsWithTheirModule on a small tree of two modules.
func TestDiscoverFindsTargetsWithTheirModule(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a/go.mod", "module a\n")
	write("a/p/x_test.go", "package p\nfunc FuzzOne(f *testing.F) {}\nfunc FuzzTwo(ff *testing.F) {}\nfunc TestNot(t *testing.T) {}\n")
	write("b/go.mod", "module b\n")
	write("b/q/r/y_test.go", "package r\nfunc FuzzThree(f *testing.F) {}\n")
	write("b/q/testdata/z_test.go", "package z\nfunc FuzzSkipped(f *testing.F) {}\n")
	got, err := Discover(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{Module: filepath.Join(root, "a"), Dir: filepath.Join(root, "a/p"), Pkg: "./p", Name: "FuzzOne"},
		{Module: filepath.Join(root, "a"), Dir: filepath.Join(root, "a/p"), Pkg: "./p", Name: "FuzzTwo"},
		{Module: filepath.Join(root, "b"), Dir: filepath.Join(root, "b/q/r"), Pkg: "./q/r", Name: "FuzzThree"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("target %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// CoordinatorDeadline tells golang/go#75804's bare deadline failure from
// a real one, on the output go test printed.
func TestCoordinatorDeadlineOnlyForTheBareDeadlineFailure(t *testing.T) {
	t.Parallel()
	progress := "fuzz: elapsed: 5s, execs: 6293 (1302/sec), new interesting: 0 (total: 14)\n"
	cases := []struct {
		name string
		out  string
		want bool
	}{
		{"coordinator deadline (seen in CI here)", progress + "--- FAIL: FuzzX (5.08s)\n    context deadline exceeded\nFAIL\nexit status 1\n", true},
		{"failing input written", progress + "--- FAIL: FuzzX (2.10s)\n    context deadline exceeded\n    Failing input written to testdata/fuzz/FuzzX/abc\nFAIL\n", false},
		{"a panic in the target", progress + "--- FAIL: FuzzX (1.00s)\n    --- FAIL: FuzzX (0.00s)\n        panic: boom\nFAIL\n", false},
		{"deadline and more lines of the failure", progress + "--- FAIL: FuzzX (5.00s)\n    context deadline exceeded\n    x_test.go:12: got 1\nFAIL\n", false},
		{"another target failed", progress + "--- FAIL: FuzzY (5.08s)\n    context deadline exceeded\nFAIL\n", false},
		{"no failure line (a build failure)", "# pkg\n./x.go:1: undefined: y\nFAIL\tpkg [build failed]\n", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := CoordinatorDeadline([]byte(c.out), "FuzzX"); got != c.want {
				t.Fatalf("CoordinatorDeadline = %v, want %v", got, c.want)
			}
		})
	}
}
