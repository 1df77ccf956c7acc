// Command fuzzrun runs every Go fuzz target of the repository, one after
// the other, for -fuzztime each (`make fuzz`, `make reliability`). It finds
// the targets by scanning *_test.go files for `func FuzzX(f *testing.F)`,
// runs `go test -run '^$' -fuzz '^FuzzX$' -fuzztime T -fuzzminimizetime M`
// in the target's module, parses the last "elapsed: …, execs: N" line of its output, and
// writes one reliability.Fuzz result per target into RELIABILITY_OUT (when
// set). It exits 1 if any target failed; Go saves the failing input under
// the package's testdata/fuzz/FuzzX/, which the output names. A run whose
// only failure is the bare "context deadline exceeded" of the -fuzztime
// deadline, with no failing input (Go's coordinator bug golang/go#75804,
// fixed in Go 1.27; seen here in CI on go1.26.8), is run once more, and
// that second run's outcome counts.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/insightops/insightops/shared/reliability"
)

// Target is one fuzz function of one package.
type Target struct {
	Module string // directory of the package's go.mod
	Dir    string // package directory
	Pkg    string // package path relative to Module, "./…"
	Name   string // FuzzX
}

var fuzzFunc = regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)

// Discover returns the fuzz targets under root, sorted by package and name.
// Directories named testdata, node_modules, vendor, data or starting with
// "." are skipped.
func Discover(root string) ([]Target, error) {
	var out []Target
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if p != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules" || n == "vendor" || n == "data") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		for _, m := range fuzzFunc.FindAllSubmatch(src, -1) {
			dir := filepath.Dir(p)
			mod, err := moduleOf(dir)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(mod, dir)
			if err != nil {
				return fmt.Errorf("package of %s: %w", p, err)
			}
			out = append(out, Target{Module: mod, Dir: dir, Pkg: "./" + filepath.ToSlash(rel), Name: string(m[1])})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("discover fuzz targets: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Dir != out[j].Dir {
			return out[i].Dir < out[j].Dir
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// moduleOf returns the nearest directory at or above dir holding a go.mod.
func moduleOf(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

var progress = regexp.MustCompile(`elapsed: (\S+), (?:execs: (\d+)|gathering baseline coverage: (\d+)/)`)

// ParseProgress returns the elapsed time and exec count of the last
// progress line of `go test -fuzz` output ("fuzz: elapsed: 1m0s, execs:
// 123456 (2057/sec), new interesting: …"). When the time ran out while the
// corpus was still being run ("gathering baseline coverage: 40/82"), the
// inputs run so far are the execs.
func ParseProgress(out []byte) (time.Duration, int64, bool) {
	var (
		d     time.Duration
		n     int64
		found bool
	)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		m := progress.FindSubmatch(sc.Bytes())
		if m == nil {
			continue
		}
		count := m[2]
		if count == nil {
			count = m[3]
		}
		pd, err1 := time.ParseDuration(string(m[1]))
		pn, err2 := strconv.ParseInt(string(count), 10, 64)
		if err1 == nil && err2 == nil {
			d, n, found = pd, pn, true
		}
	}
	return d, n, found
}

// stderrTB lets reliability.Write log to stderr outside a test.
type stderrTB struct{ failed bool }

func (*stderrTB) Helper()                         {}
func (*stderrTB) Logf(format string, args ...any) {}
func (s *stderrTB) Errorf(format string, args ...any) {
	s.failed = true
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func main() {
	root := flag.String("root", ".", "repository root to scan for fuzz targets")
	fuzztime := flag.String("fuzztime", "10s", "how long to fuzz each target (go test -fuzztime)")
	only := flag.String("run", "", "regexp: only targets whose package/name matches")
	// Go minimises every new interesting input for up to 60s by default,
	// without counting those runs as execs: on a target whose inputs are
	// archives of a few hundred KiB that took a whole minute of fuzzing
	// (FuzzExtract: 31 execs in 60s; 16,892 in 30s with 2s).
	minimize := flag.String("fuzzminimizetime", "2s", "bound of the minimisation of each new or failing input (go test -fuzzminimizetime)")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, log, *root, *fuzztime, *minimize, *only)
	stop()
	if err != nil {
		log.Error("fuzzrun failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, root, fuzztime, minimize, only string) error {
	var filter *regexp.Regexp
	if only != "" {
		var err error
		if filter, err = regexp.Compile(only); err != nil {
			return fmt.Errorf("-run: %w", err)
		}
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	targets, err := Discover(root)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		return errors.New("no fuzz targets found under " + root)
	}
	var failed []string
	for _, tg := range targets {
		pkgRel, _ := filepath.Rel(root, tg.Dir)
		pkgRel = filepath.ToSlash(pkgRel)
		if filter != nil && !filter.MatchString(pkgRel+"."+tg.Name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		log.Info("fuzzing", "package", pkgRel, "target", tg.Name, "fuzztime", fuzztime)
		out, elapsed, execs, runErr := fuzzOnce(ctx, tg, fuzztime, minimize)
		if runErr != nil && CoordinatorDeadline(out, tg.Name) {
			// golang/go#75804 (fixed in Go 1.27): the coordinator can report
			// its own -fuzztime deadline as the target's failure, with no
			// failing input. Such a run found nothing; run the target
			// once more, and any failure of that run counts.
			log.Warn("fuzz run ended with the coordinator's deadline and no failing input (golang/go#75804); running it again",
				"package", pkgRel, "target", tg.Name)
			_, elapsed, execs, runErr = fuzzOnce(ctx, tg, fuzztime, minimize)
		}
		res := &reliability.Fuzz{Package: pkgRel, Target: tg.Name, Duration: elapsed, Execs: execs, Failed: runErr != nil}
		tb := &stderrTB{}
		reliability.Write(tb, reliability.Result{Fuzz: res})
		if tb.failed {
			return errors.New("could not write the fuzz result")
		}
		if runErr != nil {
			log.Error("fuzz target failed", "package", pkgRel, "target", tg.Name, "err", runErr,
				"reproducer", filepath.Join(pkgRel, "testdata", "fuzz", tg.Name))
			failed = append(failed, pkgRel+"."+tg.Name)
			continue
		}
		log.Info("fuzzed", "package", pkgRel, "target", tg.Name, "elapsed", elapsed.String(), "execs", execs)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d fuzz target(s) failed: %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

// fuzzOnce fuzzes tg for fuzztime and returns go test's output (also
// copied to this process's stdout and stderr), the time fuzzed and the
// execs (from the output's last progress line; the wall time when there
// is none), and go test's error.
func fuzzOnce(ctx context.Context, tg Target, fuzztime, minimize string) (out []byte, elapsed time.Duration, execs int64, err error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-fuzz", "^"+tg.Name+"$", "-fuzztime", fuzztime, "-fuzzminimizetime", minimize, tg.Pkg)
	cmd.Dir = tg.Module
	var buf bytes.Buffer
	cmd.Stdout = io.MultiWriter(&buf, os.Stdout)
	cmd.Stderr = io.MultiWriter(&buf, os.Stderr)
	start := time.Now()
	err = cmd.Run()
	elapsed, execs, ok := ParseProgress(buf.Bytes())
	if !ok {
		elapsed = time.Since(start)
	}
	return buf.Bytes(), elapsed, execs, err
}

// CoordinatorDeadline reports whether the output of a failed fuzz run of
// target shows only Go's coordinator bug golang/go#75804: the target's
// failure is the bare "context deadline exceeded" of the -fuzztime
// deadline, and no failing input was written.
func CoordinatorDeadline(out []byte, target string) bool {
	if bytes.Contains(out, []byte("Failing input written to")) {
		return false
	}
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "--- FAIL: "+target+" (") {
			return i+1 < len(lines) && strings.TrimSpace(lines[i+1]) == "context deadline exceeded" &&
				(i+2 == len(lines) || !strings.HasPrefix(lines[i+2], "    "))
		}
	}
	return false
}
