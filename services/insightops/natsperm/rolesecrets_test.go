package natsperm

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/insightops/insightops/services/backup/backupworker"
	"github.com/insightops/insightops/services/chroma/chromaworker"
	"github.com/insightops/insightops/services/init/initworker"
	"github.com/insightops/insightops/services/restore/restoreworker"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/presence"
	"github.com/insightops/insightops/shared/testkit"
)

// TestAWorkerRunsWithoutTheAPIsSecrets starts each worker binary's Run
// the way its main does (app.Run with its AppOptions) with APP_ENV=production
// and no JWT_SECRET (and, but for init, no INIT_ADMIN_PASSWORD; backup and
// restore get their own BACKUP_SIGNING_KEY, which they require): each
// comes up and announces itself in WORKERS. Given JWT_SECRET, the same
// worker refuses to start (it would hold a key that signs admin tokens).
func TestAWorkerRunsWithoutTheAPIsSecrets(t *testing.T) {
	t.Parallel()
	_, ns := testkit.Bus(t)
	workers := []struct {
		kind string
		opts app.Options
		run  app.RunFunc
	}{
		{"init", initworker.AppOptions, initworker.Run},
		{"backup", backupworker.AppOptions, backupworker.Run},
		{"restore", restoreworker.AppOptions, restoreworker.Run},
		{"chroma", chromaworker.AppOptions, chromaworker.Run},
	}
	for _, w := range workers {
		t.Run(w.kind, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{
				"APP_ENV":   "production",
				"NATS_URL":  ns.ClientURL(),
				"DATA_DIR":  t.TempDir(),
				"WORKER_ID": "nosecret-" + w.kind,
				"LOG_LEVEL": "warn",
			}
			// Each worker gets exactly its own role's secrets, as its
			// manifest does.
			if w.opts.Role.Holds("INIT_ADMIN_PASSWORD") {
				vars["INIT_ADMIN_PASSWORD"] = "Zr8-pq1-mnX-4tw"
			}
			if w.opts.Role.Holds("BACKUP_SIGNING_KEY") {
				vars["BACKUP_SIGNING_KEY"] = randomKey(t)
			}
			getenv := func(k string) string { return vars[k] }
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			var kv app.Deps
			started := make(chan struct{})
			go func() {
				done <- app.Run(runCtx, getenv, io.Discard, w.opts, func(ctx context.Context, deps app.Deps) error {
					kv = deps
					close(started)
					return w.run(ctx, deps)
				})
			}()
			select {
			case <-started:
			case err := <-done:
				t.Fatalf("%s did not start without JWT_SECRET: %v", w.kind, err)
			}
			deadline := time.Now().Add(time.Minute)
			for {
				if live, err := presence.List(ctx, kv.Bus.Workers); err == nil && len(live[w.kind]) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s never announced itself in WORKERS", w.kind)
				}
				select {
				case err := <-done:
					t.Fatalf("%s stopped: %v", w.kind, err)
				case <-time.After(50 * time.Millisecond):
				}
			}
			stop()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("%s: %v", w.kind, err)
			}

			// The same worker given the API's key refuses it.
			vars["JWT_SECRET"] = "Zr8-pq1-mnX-4tw-0123456789abcdef0123"
			err := app.Run(ctx, getenv, io.Discard, w.opts, func(context.Context, app.Deps) error {
				t.Error("run called with JWT_SECRET in a worker's environment")
				return nil
			})
			var ve *config.VarError
			if !errors.As(err, &ve) || ve.Var != "JWT_SECRET" {
				t.Fatalf("with JWT_SECRET: %v, want a JWT_SECRET configuration error", err)
			}
		})
	}
}

// randomKey is a fresh BACKUP_SIGNING_KEY (base64 of 32 random bytes).
func randomKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}
