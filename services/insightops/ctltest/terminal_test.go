package ctltest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/services/insightctl/cli"
	"github.com/insightops/insightops/shared/testkit"
)

// buildInsightctl builds bin insightctl from the repository into a temp dir.
func buildInsightctl(t *testing.T) string {
	t.Helper()
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "insightctl")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/insightctl")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build insightctl: %v\n%s", err, out)
	}
	return bin
}

// bar is the progress bar insightctl draws for a job: the kind, a
// bracketed bar and the percent, e.g. "backup.create  100 % [======] succeeded".
var bar = regexp.MustCompile(`backup\.create\s+100 %\s*\[=+\]`)

// TestProgressBarIsDrawnInATerminal runs the built insightctl in a real
// terminal (a tmux pane): backup create draws its progress bar there, which
// ends full, while the same command with its output piped draws none.
func TestProgressBarIsDrawnInATerminal(t *testing.T) {
	t.Parallel()
	tmux := testkit.Tool(t, "tmux", "Debian's tmux")
	bin := buildInsightctl(t)
	in := start(t, "")
	ctl := newCtl(t, nil)
	ctl.login(in)
	token := tokenOf(t, ctl)

	socket := "insightctl-test-" + testkit.RandomSuffix()
	tm := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-L", socket}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { _, _ = tm("kill-server") })
	script := fmt.Sprintf("%s backup create; echo EXIT=$?; %s backup create | cat; echo PIPED=$?; sleep 600", bin, bin)
	if out, err := tm("new-session", "-d", "-s", "ctl", "-x", "150", "-y", "40",
		"-e", cli.EnvURL+"="+in.url, "-e", cli.EnvToken+"="+token, "-e", "TERM=xterm-256color",
		"sh", "-c", script); err != nil {
		testkit.Unavailable(t, "tmux", fmt.Errorf("new-session: %w: %s", err, out))
	}
	var screen string
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := tm("capture-pane", "-p", "-t", "ctl", "-S", "-100")
		if err != nil {
			t.Fatalf("capture-pane: %v: %s", err, out)
		}
		screen = out
		if strings.Contains(screen, "PIPED=") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("screen:\n%s", screen)
	if !strings.Contains(screen, "EXIT=0") || !strings.Contains(screen, "PIPED=0") {
		t.Fatalf("the backups did not both succeed in the terminal")
	}
	first, piped, _ := strings.Cut(screen, "EXIT=0")
	if !bar.MatchString(first) {
		t.Errorf("no full progress bar of backup.create on the terminal")
	}
	if strings.Contains(piped, "[=") || strings.Contains(piped, "\x1b[") {
		t.Errorf("piped output has a bar or colour:\n%s", piped)
	}
	if !strings.Contains(piped, "backup.create ") || !strings.Contains(piped, "succeeded") {
		t.Errorf("piped output lacks the final state:\n%s", piped)
	}
}

// tokenOf is the token ctl saved at login.
func tokenOf(t *testing.T, c *ctl) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.cfgDir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"token":\s*"([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no token in the saved login")
	}
	return string(m[1])
}
