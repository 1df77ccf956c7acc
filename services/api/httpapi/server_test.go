package httpapi

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/testkit"
)

func TestDevelopmentSecretPersists(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := filepath.Join(e.cfg.DataDir, SecretFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret mode %s, want 0600", fi.Mode().Perm())
	}
	tok := e.token(auth.Admin)

	// A restarted API on the same DATA_DIR accepts the old token.
	again, err := New(Deps{Config: e.cfg, Bus: e.bus, DB: e.db, Log: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.tokens.Verify(tok); err != nil {
		t.Fatalf("token of the first instance refused after restart: %v", err)
	}

	// Another DATA_DIR, another secret.
	cfg := e.cfg
	cfg.DataDir = t.TempDir()
	other, err := New(Deps{Config: cfg, Bus: e.bus, DB: e.db})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.tokens.Verify(tok); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("another instance's token under a fresh secret: %v, want auth.ErrInvalidToken", err)
	}

	// A corrupt secret file is an error, not a silent new key.
	cfg.DataDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg.DataDir, SecretFile), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Deps{Config: cfg, Bus: e.bus, DB: e.db}); err == nil || !strings.Contains(err.Error(), SecretFile) {
		t.Fatalf("corrupt secret: %v", err)
	}
}

func TestSecretFromConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.cfg
	cfg.DataDir = t.TempDir()
	cfg.JWTSecret = strings.Repeat("s", 40)
	s, err := New(Deps{Config: cfg, Bus: e.bus, DB: e.db})
	if err != nil {
		t.Fatal(err)
	}
	if string(s.tokens.Secret) != cfg.JWTSecret {
		t.Error("JWT_SECRET not used")
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, SecretFile)); !os.IsNotExist(err) {
		t.Errorf("a secret file was written although JWT_SECRET is set (%v)", err)
	}
	cfg.JWTSecret = ""
	cfg.AppEnv = config.Production
	if _, err := New(Deps{Config: cfg, Bus: e.bus, DB: e.db}); err == nil || !strings.Contains(err.Error(), "JWT_SECRET is required in production") {
		t.Fatalf("production without JWT_SECRET: %v", err)
	}
	cfg.AppEnv, cfg.JWTSecret = config.Development, "too-short"
	if _, err := New(Deps{Config: cfg, Bus: e.bus, DB: e.db}); err == nil || !strings.Contains(err.Error(), "JWT_SECRET must be at least") {
		t.Fatalf("short JWT_SECRET: %v", err)
	}
	if _, err := New(Deps{Config: e.cfg, DB: e.db}); err == nil || !strings.Contains(err.Error(), "Deps.Bus must be an opened bus") {
		t.Fatalf("nil bus: %v", err)
	}
	if _, err := New(Deps{Config: e.cfg, Bus: e.bus}); err == nil || !strings.Contains(err.Error(), "Deps.DB is required") {
		t.Fatalf("nil db: %v", err)
	}
}

func TestPanicIsGeneric500(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.Echo().GET("/test/panic", func(echo.Context) error { panic("boom: secret internals") })
	res := e.do(req{method: http.MethodGet, path: "/test/panic"})
	if res.status != http.StatusInternalServerError {
		t.Fatalf("%d %s", res.status, res.body)
	}
	code, msg := errorOf(t, res)
	if code != CodeInternal || strings.Contains(string(res.body), "boom") || msg != "internal error" {
		t.Errorf("panic answer %s", res.body)
	}
	e.srv.Echo().GET("/test/error", func(echo.Context) error { return os.ErrPermission })
	res = e.do(req{method: http.MethodGet, path: "/test/error"})
	if res.status != http.StatusInternalServerError || strings.Contains(string(res.body), "permission") {
		t.Errorf("plain error answer %d %s", res.status, res.body)
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.do(req{method: http.MethodGet, path: "/health"})
	if len(res.header.Get(echo.HeaderXRequestID)) < 16 {
		t.Errorf("generated X-Request-ID %q", res.header.Get(echo.HeaderXRequestID))
	}
	res = e.do(req{method: http.MethodGet, path: "/health", headers: map[string]string{echo.HeaderXRequestID: "trace-abc_123"}})
	if got := res.header.Get(echo.HeaderXRequestID); got != "trace-abc_123" {
		t.Errorf("client id not echoed: %q", got)
	}
	for _, bad := range []string{strings.Repeat("a", 200), "x\"y", "a b", "é"} {
		res = e.do(req{method: http.MethodGet, path: "/health", headers: map[string]string{echo.HeaderXRequestID: bad}})
		if got := res.header.Get(echo.HeaderXRequestID); got == bad || got == "" {
			t.Errorf("bad client id %q answered as %q", bad, got)
		}
	}
}

// TestServeShutsDownGracefully runs the real listener and stops it with an
// event stream open: the stream ends and Serve returns.
func TestServeShutsDownGracefully(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, acc := e.submitInit("")
	srv, err := New(Deps{Config: e.cfg, Bus: e.bus, DB: e.db, Log: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	url := "http://" + ln.Addr().String()
	tok, _, err := srv.tokens.Issue(testUsers[auth.Viewer], auth.Viewer)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodGet, url+"/admin/db/tasks/"+acc.TaskID+"/events", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	res, err := testkit.HTTP.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, ":") {
		t.Fatalf("stream start %q %v", line, err)
	}

	start := time.Now()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s with a stream open", d)
	}
	// The stream ended.
	for {
		if _, err := br.ReadString('\n'); err != nil {
			break
		}
	}
	if _, err := testkit.HTTP.Get(url + "/health"); err == nil {
		t.Error("still serving after shutdown")
	}
}
