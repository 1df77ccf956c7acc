package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

// BenchmarkConsolePagesAt10k: the console's jobs and audit pages (the
// first page, a filtered one, a deep one) over 10,000 job records and
// 10,000 audit rows; each is one server-side page of 50.
func BenchmarkConsolePagesAt10k(b *testing.B) {
	te := testkit.NewEnv(b)
	ctx := context.Background()
	h, err := auth.HashPassword(testPassword)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := te.DB.CreateUserIfAbsent(ctx, testUsers[auth.Admin], h, string(auth.Admin)); err != nil {
		b.Fatal(err)
	}
	srv, err := New(Deps{Config: te.Config, Bus: te.Bus, DB: te.DB, Log: testkit.Logger(b)})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(func() { srv.CloseStreams(); ts.Close() })
	now := time.Now().UTC()
	for i := range 10000 {
		rec := jobs.Record{ID: jobs.NewID(), Kind: jobs.Kinds[i%len(jobs.Kinds)], State: jobs.Succeeded, Progress: 100,
			SubmittedBy: fmt.Sprintf("user%d@example.com", i%11), CreatedAt: now, UpdatedAt: now, Attempt: 1, MaxAttempts: 5}
		if _, err := srv.jobs.Create(ctx, rec); err != nil {
			b.Fatal(err)
		}
		if _, err := te.DB.InsertAuditLog(ctx, store.AuditLog{EventID: fmt.Sprintf("bench-%d", i), At: now, Actor: fmt.Sprintf("user%d@example.com", i%7),
			Action: "backup.requested", Resource: "backup", Outcome: "success", Hash: "h", PrevHash: "p"}); err != nil {
			b.Fatal(err)
		}
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	res, err := client.PostForm(ts.URL+"/ui/login", url.Values{"email": {testUsers[auth.Admin]}, "password": {testPassword}})
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	for _, p := range []string{"/ui/jobs", "/ui/jobs?kind=backup.create&submitted_by=user3%40example.com", "/ui/jobs?page=150",
		"/ui/audit", "/ui/audit?actor=user3%40example.com", "/ui/audit?page=150"} {
		b.Run(strings.TrimPrefix(p, "/ui/"), func(b *testing.B) {
			for b.Loop() {
				res, err := client.Get(ts.URL + p)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "<tbody>") || strings.Contains(string(body), "No job matches") {
					b.Fatalf("%s: %d", p, res.StatusCode)
				}
			}
		})
	}
}
