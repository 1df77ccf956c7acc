package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/auth"
)

// TestSafeNextStaysInTheConsole: the page after sign-in is a console path,
// never another site.
func TestSafeNextStaysInTheConsole(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/ui/jobs?kind=init.run": "/ui/jobs?kind=init.run",
		"/ui/":                   "/ui/",
		"":                       "/ui/",
		"//evil.example/ui/":     "/ui/",
		"https://evil.example/":  "/ui/",
		"/ui/\\evil":             "/ui/",
		"/admin/db/tasks":        "/ui/",
		"/ui/x\r\nSet-Cookie: a": "/ui/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSameOrigin: a request names its origin by Origin or, without it,
// Sec-Fetch-Site; another host, an opaque origin or a cross-site fetch is
// not the console's own.
func TestSameOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		origin, site string
		want         bool
	}{
		{"http://console.example:8000", "", true},
		{"http://other.example:8000", "", false},
		{"null", "", false},
		{"", "same-origin", true},
		{"", "none", true},
		{"", "", true},
		{"", "cross-site", false},
		{"", "same-site", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "http://console.example:8000/ui/backups", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if tc.site != "" {
			r.Header.Set("Sec-Fetch-Site", tc.site)
		}
		if got := sameOrigin(r); got != tc.want {
			t.Errorf("Origin %q, Sec-Fetch-Site %q: %v, want %v", tc.origin, tc.site, got, tc.want)
		}
	}
}

// TestCSRFTokenIsBoundToTheSessionAndTheKey: the token differs per login
// token and per key, and is stable for one of each (replicas agree).
func TestCSRFTokenIsBoundToTheSessionAndTheKey(t *testing.T) {
	t.Parallel()
	verify := func(string) (auth.Claims, error) { return auth.Claims{}, nil }
	a, err := New(Options{API: http.NotFoundHandler(), Verify: verify, CSRFKey: []byte(strings.Repeat("a", 32))})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{API: http.NotFoundHandler(), Verify: verify, CSRFKey: []byte(strings.Repeat("b", 32))})
	if err != nil {
		t.Fatal(err)
	}
	first, again := a.csrfFor("t1"), a.csrfFor("t1")
	if first != again || first == a.csrfFor("t2") || first == b.csrfFor("t1") {
		t.Fatal("the CSRF token is not a function of exactly the key and the session")
	}
	if _, err := New(Options{API: http.NotFoundHandler(), Verify: verify, CSRFKey: []byte("short")}); err == nil {
		t.Fatal("a short CSRF key was accepted")
	}
}

// TestResubmitPaths: the one-click re-submission uses each kind's own
// submit route, and offers none for the destructive kinds.
func TestResubmitPaths(t *testing.T) {
	t.Parallel()
	params := map[string]any{"name": "backup-20260101T000000Z-01J0000000000000000000000.tar.gz"}
	if got := resubmitPath("backup.verify", params); got != "/admin/db/backup/backup-20260101T000000Z-01J0000000000000000000000.tar.gz/verify" || len(params) != 0 {
		t.Errorf("verify: %q, params %v", got, params)
	}
	for kind, want := range map[string]string{"backup.create": "/admin/db/backup", "backup.prune": "/admin/db/backup/prune",
		"chroma.train": "/admin/db/chroma/train", "init.run": "/admin/db/init", "restore.run": "", "chroma.clear": ""} {
		if got := resubmitPath(kind, map[string]any{}); got != want {
			t.Errorf("%s: %q, want %q", kind, got, want)
		}
	}
}

// TestAge: coarse ages for the pages.
func TestAge(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var none *time.Time
	for in, want := range map[any]string{now.Add(-30 * time.Second): "30s ago", now.Add(-5 * time.Minute): "5m ago",
		now.Add(-3 * time.Hour): "3h ago", now.Add(-72 * time.Hour): "3d ago", none: "never", time.Time{}: "never"} {
		if got := age(in); got != want {
			t.Errorf("age(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestSignatureText: whatever shape the API gives an archive's signature
// status, the backups page shows it and does not fail.
func TestSignatureText(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{``: "", `null`: "", `"valid"`: "valid", `true`: "true",
		`{"status": "valid", "key_id": "k1"}`: `{"status":"valid","key_id":"k1"}`} {
		if got := (backupItem{Signature: []byte(raw)}).SignatureText(); got != want {
			t.Errorf("signature %s: %q, want %q", raw, got, want)
		}
	}
}
