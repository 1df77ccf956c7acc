package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/config"
)

// TestExitLogsNoDatabasePassword: whatever error a process exits with —
// a configuration error config.Load made, or a later error that quotes a
// connection string — the line Exit logs never holds DATABASE_URL's
// password, and still names what went wrong.
func TestExitLogsNoDatabasePassword(t *testing.T) {
	t.Parallel()
	const pw = "Sup3r-s3cret-PW"
	vars := map[string]string{
		"DATABASE_URL": "postgres://insightops:" + pw + "@db:5432/insightops",
		"APP_ENV":      "production",
		// Pasted into a variable that is not a secret: the VarError shows its value.
		"TARGET_DB_PATH":    "/data/postgres://insightops:" + pw + "@db/x",
		"NATS_INBOX_PREFIX": "_INBOX " + pw,
	}
	getenv := func(k string) string { return vars[k] }
	_, loadErr := config.LoadRole(getenv, config.RoleBackup)
	if loadErr == nil {
		t.Fatal("config.LoadRole accepted NATS_INBOX_PREFIX with a space")
	}
	if !strings.Contains(loadErr.Error(), pw) {
		t.Fatalf("the premise: the raw error shows the password (%v)", loadErr)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"config error", loadErr, "NATS_INBOX_PREFIX"},
		{"wrapped config error", fmt.Errorf("start backup: %w", loadErr), "start backup"},
		{"connection error", fmt.Errorf("open system db: failed to connect to `%s`: refused", vars["DATABASE_URL"]), "open system db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			app.LogExit(&buf, tc.err, getenv)
			var line struct{ Level, Msg, Err string }
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
			}
			if strings.Contains(buf.String(), pw) {
				t.Fatalf("the exit line shows the password: %s", buf.String())
			}
			if line.Level != "ERROR" || line.Msg != "exit" || !strings.Contains(line.Err, tc.want) {
				t.Fatalf("exit line %+v lacks %q", line, tc.want)
			}
		})
	}
}
