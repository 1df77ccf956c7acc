package app_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/testkit"
)

// TestConnectionOptionsFollowTheRole opens a process's deps against a real
// server and checks what the options and NATS_INBOX_PREFIX change: the
// reply inboxes carry the configured prefix, and with
// FailFastWhenDisconnected a publish while the server is gone fails at
// once instead of being buffered for after the reconnect (the API's
// guarantee that a submission it answered 503 never reaches the bus).
func TestConnectionOptionsFollowTheRole(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		prefix     string
		failFast   bool
		wantInbox  string
		wantFailed bool
	}{
		{name: "worker: default prefix, buffered while down", wantInbox: "_INBOX."},
		{name: "api: own prefix, fails fast while down", prefix: "_INBOX_api", failFast: true, wantInbox: "_INBOX_api.", wantFailed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, ns := testkit.Bus(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			vars := map[string]string{"NATS_URL": ns.ClientURL(), "DATA_DIR": t.TempDir(), "NATS_INBOX_PREFIX": tc.prefix}
			deps, closeAll, err := app.OpenEnv(ctx, env(vars), io.Discard, app.Options{Name: "insightops-test", FailFastWhenDisconnected: tc.failFast})
			if err != nil {
				t.Fatal(err)
			}
			defer closeAll()
			nc := deps.Bus.Conn
			if got := nc.NewInbox(); len(got) <= len(tc.wantInbox) || got[:len(tc.wantInbox)] != tc.wantInbox {
				t.Errorf("inbox %q, want prefix %q", got, tc.wantInbox)
			}
			ns.Shutdown()
			deadline := time.Now().Add(10 * time.Second)
			for nc.Status() == nats.CONNECTED && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if nc.Status() == nats.CONNECTED {
				t.Fatal("still connected 10s after the server shut down")
			}
			err = nc.Publish("jobs.init", []byte("{}"))
			if tc.wantFailed && !errors.Is(err, nats.ErrReconnectBufExceeded) {
				t.Errorf("publish while disconnected: %v, want %v", err, nats.ErrReconnectBufExceeded)
			}
			if !tc.wantFailed && err != nil {
				t.Errorf("publish while disconnected: %v, want it buffered", err)
			}
		})
	}
}
