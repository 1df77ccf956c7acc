package app

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestLoggerFormatFollowsLogFormatAndTheTerminal(t *testing.T) {
	tty, master := openPTY(t)
	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pipeR.Close()
	defer pipeW.Close()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	if isTerminal(pipeW) || isTerminal(&bytes.Buffer{}) || isTerminal(devNull) {
		t.Fatal("a pipe, a buffer or /dev/null (a character device, not a terminal) taken for a terminal")
	}
	if !isTerminal(tty) {
		t.Fatal("a pseudo-terminal not taken for a terminal")
	}
	for _, tc := range []struct {
		format   string
		wantJSON bool
	}{
		{"json", true},
		{"text", false},
		{"auto", true}, // a buffer is not a terminal
	} {
		var buf bytes.Buffer
		NewLoggerFormat(&buf, "info", tc.format).Info("hello", "job_id", "j1")
		line := strings.TrimSpace(buf.String())
		isJSON := json.Valid([]byte(line))
		if isJSON != tc.wantJSON {
			t.Errorf("LOG_FORMAT=%s wrote %q: JSON %v, want %v", tc.format, line, isJSON, tc.wantJSON)
		}
		if !tc.wantJSON && !strings.Contains(line, "msg=hello job_id=j1") {
			t.Errorf("text line %q lacks msg=hello job_id=j1", line)
		}
	}
	// auto on a terminal writes text: read the line back from the pty's master side.
	NewLoggerFormat(tty, "info", "auto").Info("hello", "job_id", "j1")
	got := make([]byte, 512)
	n, err := master.Read(got)
	if err != nil || !strings.Contains(string(got[:n]), "msg=hello job_id=j1") {
		t.Errorf("auto on a terminal wrote %q (%v), want a text line", got[:n], err)
	}
	var buf bytes.Buffer
	NewLoggerFormat(&buf, "warn", "json").Info("dropped")
	if buf.Len() != 0 {
		t.Errorf("info line written at level warn: %q", buf.String())
	}
}
