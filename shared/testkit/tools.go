package testkit

import (
	"fmt"
	"os/exec"
	"testing"
)

// Tool returns the path of the command-line tool name, or stops the test
// as Unavailable (a skip outside CI, a failure when CI is set) when it is
// not on PATH; pkg says what installs it.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, name, fmt.Errorf("%w (install %s)", err, pkg))
	}
	return path
}
