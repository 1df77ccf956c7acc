package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/insightops/insightops/shared/client"
)

var update = flag.Bool("update", false, "rewrite the golden --help files of testdata/help")

// run runs insightctl in-process with no server and an empty environment.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, IO{Out: &out, Err: &errOut, ConfigDir: t.TempDir()})
	return out.String(), errOut.String(), code
}

// commands lists every command path of the tree but cobra's own help.
func commands() [][]string {
	var out [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		out = append(out, path)
		for _, sub := range c.Commands() {
			if sub.Name() == "help" {
				continue
			}
			walk(sub, append(slices.Clone(path), sub.Name()))
		}
	}
	walk((&env{}).rootCommand(), nil)
	return out
}

// TestHelpMatchesGoldenFiles: every command's --help is its file under
// testdata/help (go test -run TestHelp -update rewrites them), every
// command has examples, and no golden file is left over from a command
// that is gone.
func TestHelpMatchesGoldenFiles(t *testing.T) {
	dir := filepath.Join("testdata", "help")
	want := map[string]bool{}
	for _, path := range commands() {
		name := strings.Join(append([]string{"insightctl"}, path...), "_") + ".txt"
		want[name] = true
		out, errOut, code := run(t, append(slices.Clone(path), "--help")...)
		if code != ExitOK || errOut != "" {
			t.Errorf("%v --help: exit %d, stderr %q", path, code, errOut)
			continue
		}
		if !strings.Contains(out, "Examples:") {
			t.Errorf("insightctl %s --help has no examples", strings.Join(path, " "))
		}
		file := filepath.Join(dir, name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		golden, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%v (run go test ./cli -run TestHelp -update)", err)
			continue
		}
		if string(golden) != out {
			t.Errorf("insightctl %s --help differs from %s (run go test ./cli -run TestHelp -update and review the diff):\n%s",
				strings.Join(path, " "), file, out)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("%s is the help of no command: remove it", filepath.Join(dir, e.Name()))
		}
	}
}

// TestReadmeListsTheExitCodes: the README's exit-code table is ExitCodes,
// row for row.
func TestReadmeListsTheExitCodes(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| (\\d+) \\| `([a-z_]+)` \\| ([^|]+) \\|$")
	var got []ExitCode
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		n, _ := strconv.Atoi(m[1])
		got = append(got, ExitCode{n, m[2], strings.TrimSpace(m[3])})
	}
	if !slices.Equal(got, ExitCodes) {
		var b strings.Builder
		for _, c := range ExitCodes {
			b.WriteString("| " + strconv.Itoa(c.Code) + " | `" + c.Name + "` | " + c.Meaning + " |\n")
		}
		t.Errorf("README's insightctl exit-code table differs from ExitCodes; it should read:\n%s", b.String())
	}
	for i, c := range ExitCodes {
		if c.Code != i {
			t.Errorf("exit code %d is at row %d: keep ExitCodes in order without gaps", c.Code, i)
		}
	}
}

// TestExitCodeOfEachFailure: each kind of failure maps to its row.
func TestExitCodeOfEachFailure(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{usagef("bad"), ExitUsage},
		{&jobError{id: "x", state: "failed"}, ExitJobFailed},
		{errNotLoggedIn, ExitAuth},
		{&client.Error{Status: 401, Code: "unauthorized"}, ExitAuth},
		{&client.Error{Status: 403, Code: "forbidden"}, ExitAuth},
		{&client.Error{Status: 404, Code: "not_found"}, ExitNotFound},
		{&client.Error{Status: 409, Code: "lock_held"}, ExitConflict},
		{&client.Error{Status: 409, Code: "archive_exists"}, ExitConflict},
		{&client.Error{Status: 400, Code: "bad_request"}, ExitUsage},
		{&client.Error{Status: 422, Code: "idempotency_conflict"}, ExitUsage},
		{&client.Error{Status: 422, Code: "archive_invalid"}, ExitError},
		{&client.Error{Status: 502, Code: "http_502"}, ExitUnreachable},
		{&client.Error{Status: 500, Code: "internal"}, ExitError},
		{&client.UnreachableError{URL: "http://x", Err: os.ErrDeadlineExceeded}, ExitUnreachable},
		{&client.DigestError{Name: "a", Want: "1", Got: "2", WantSize: -1}, ExitDigest},
	}
	for _, c := range cases {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// TestBadUsageExits2: cobra's own errors and the commands' checks.
func TestBadUsageExits2(t *testing.T) {
	for _, args := range [][]string{
		{"bogus"},
		{"backup", "list", "--bogus"},
		{"backup", "verify"},
		{"backup", "verify", "../etc/passwd"},
		{"jobs", "get", "not-a-ulid"},
		{"--output", "yaml", "health"},
		{"completion", "powershell"},
		{"kb", "clear"},
		{"audit", "list", "--since", "yesterday"},
	} {
		_, errOut, code := run(t, args...)
		if code != ExitUsage || !strings.HasPrefix(errOut, "insightctl: ") {
			t.Errorf("%v: exit %d, stderr %q; want %d", args, code, errOut, ExitUsage)
		}
	}
}

// TestCompletionScripts: bash, zsh and fish scripts complete insightctl.
func TestCompletionScripts(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		out, _, code := run(t, "completion", sh)
		if code != ExitOK || !strings.Contains(out, "insightctl") || len(out) < 500 {
			t.Errorf("completion %s: exit %d, %d bytes", sh, code, len(out))
		}
	}
}

// TestSavedLoginIsPrivateAndOnlySentToItsURL: the login file is 0600 in a
// 0700 directory, and its token is not used for another API.
func TestSavedLoginIsPrivateAndOnlySentToItsURL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "insightops")
	e := &env{io: IO{ConfigDir: dir, Getenv: func(string) string { return "" }}}
	path, err := e.saveCredentials(credentials{URL: "http://a.example:8000", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, st.Mode().Perm(), err, want)
		}
	}
	if c, err := e.client(); err != nil || c.Token() != "tok" || c.BaseURL() != "http://a.example:8000" {
		t.Errorf("client from the saved login: %v %v", c, err)
	}
	e.url = "http://b.example:8000"
	if _, err := e.client(); err != errNotLoggedIn {
		t.Errorf("the saved token for another URL: %v, want errNotLoggedIn", err)
	}
	e.io.Getenv = func(k string) string { return map[string]string{EnvToken: "iops_env"}[k] }
	if c, err := e.client(); err != nil || c.Token() != "iops_env" || c.BaseURL() != "http://b.example:8000" {
		t.Errorf("INSIGHTOPS_TOKEN: %v %v", c, err)
	}
}
