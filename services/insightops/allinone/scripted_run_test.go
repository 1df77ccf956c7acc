package allinone_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auditsink"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

// TestScriptedRunLeavesExactlyTheExpectedAuditTrail is issue 5's full
// run: login, init, backup, verify, train, clear, restore, a denied request
// and a failed login, on the all-in-one with a real Chroma. Every job
// leaves its requested/started/succeeded events once; the AUDIT stream,
// audit_logs and an external durable consumer hold the same events, each
// once, none with a secret; the hash chain verifies, and names a row
// altered by hand.
func TestScriptedRunLeavesExactlyTheExpectedAuditTrail(t *testing.T) {
	t.Parallel()
	chroma := testkit.Chroma(t)
	dir := t.TempDir()
	in := start(t, dir, "CHROMA_URL", chroma.URL)
	const wrongPassword = "Not-The-Password-7"
	token := in.loginWhenReady(t)
	in.call(t, "POST", "/auth/login", "", map[string]string{"email": "admin@example.com", "password": wrongPassword}, nil)
	if code := in.call(t, "POST", "/admin/db/init", "forged."+token, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("forged token: %d", code)
	}

	var jobIDs []string
	run := func(method, path string, body any) {
		t.Helper()
		var acc struct {
			TaskID string `json:"task_id"`
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			code := in.call(t, method, path, token, body, &acc)
			if code == http.StatusAccepted {
				break
			}
			if code != http.StatusConflict || time.Now().After(deadline) { // 409: a lease still held by the previous job
				t.Fatalf("%s %s: %d", method, path, code)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if rec := in.waitFinal(t, token, acc.TaskID); rec.State != "succeeded" {
			t.Fatalf("%s %s: job %s %s %+v", method, path, acc.TaskID, rec.State, rec.Error)
		}
		jobIDs = append(jobIDs, acc.TaskID)
	}
	run("POST", "/admin/db/init", nil)
	run("POST", "/admin/db/chroma/train", nil)
	run("POST", "/admin/db/backup", map[string]any{"note": "scripted"})
	var list struct {
		Backups []struct{ Filename string } `json:"backups"`
	}
	in.call(t, "GET", "/admin/db/backup/list", token, nil, &list)
	if len(list.Backups) != 1 {
		t.Fatalf("backups %+v", list.Backups)
	}
	archive := list.Backups[0].Filename
	run("POST", "/admin/db/backup/"+archive+"/verify", nil)
	run("DELETE", "/admin/db/chroma/clear?confirm=true", nil)
	run("POST", "/admin/db/backup/restore/"+archive+"?confirm=true", map[string]any{"skip_safety_backup": true})

	ctx := context.Background()
	js := in.deps.Bus.JS
	stream, err := js.Stream(ctx, "AUDIT")
	if err != nil {
		t.Fatal(err)
	}
	// The stream: read every event.
	info, _ := stream.Info(ctx)
	var events []audit.Event
	raw := map[string]string{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("AUDIT seq %d: %v", seq, err)
		}
		var e audit.Event
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatal(err)
		}
		if _, dup := raw[e.ID]; dup {
			t.Fatalf("event %s twice in the stream", e.ID)
		}
		raw[e.ID] = string(m.Data)
		events = append(events, e)
	}
	// Expected: each job requested, started and succeeded exactly once.
	per := map[string]map[string]int{}
	count := map[string]int{}
	for _, e := range events {
		count[e.Action+"/"+e.Outcome]++
		if e.JobID != "" {
			if per[e.JobID] == nil {
				per[e.JobID] = map[string]int{}
			}
			parts := strings.Split(e.Action, ".")
			per[e.JobID][parts[len(parts)-1]]++
		}
	}
	for _, id := range jobIDs {
		for _, phase := range []string{"requested", "started", "succeeded"} {
			if per[id][phase] != 1 {
				t.Errorf("job %s: %d %s events, want 1 (%v)", id, per[id][phase], phase, per[id])
			}
		}
	}
	for _, want := range []string{"auth.login/success", "auth.login/failure", "auth.denied/denied"} {
		if count[want] == 0 {
			t.Errorf("no %s event; have %v", want, count)
		}
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("%d audit events: %v", len(events), keys)

	// No secret anywhere.
	jwtSecret, _ := os.ReadFile(filepath.Join(dir, "jwt.secret"))
	secrets := []string{config.DefaultAdminPassword, wrongPassword, token}
	if s := strings.TrimSpace(string(jwtSecret)); s != "" {
		secrets = append(secrets, s)
	}
	for id, body := range raw {
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Fatalf("event %s holds a secret", id)
			}
		}
	}

	// audit_logs holds the same events once (the sink may trail by a moment).
	db := in.deps.DB
	deadline := time.Now().Add(15 * time.Second)
	for {
		rows, err := db.AuditLogs(ctx, store.AuditFilter{Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		stored := map[string]int{}
		for _, r := range rows {
			stored[r.EventID]++
		}
		missing := 0
		for id := range raw {
			if stored[id] != 1 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events not stored exactly once in audit_logs", missing, len(raw))
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep, err := auditsink.Verify(ctx, db)
	if err != nil || !rep.OK {
		t.Fatalf("audit chain after the run (restore included): %+v %v", rep, err)
	}

	// An external durable consumer sees each event once, in order.
	cons, err := js.CreateOrUpdateConsumer(ctx, "AUDIT", jetstream.ConsumerConfig{Durable: "scripted-external", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	var last uint64
	for len(got) < len(raw) {
		batch, err := cons.Fetch(200, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, _ := m.Metadata()
			var e audit.Event
			_ = json.Unmarshal(m.Data(), &e)
			if got[e.ID] || md.Sequence.Stream <= last {
				t.Fatalf("external consumer: event %s again or out of order", e.ID)
			}
			got[e.ID], last = true, md.Sequence.Stream
			_ = m.Ack()
		}
		if n == 0 {
			t.Fatalf("external consumer saw %d of %d events", len(got), len(raw))
		}
	}

	// One row altered by hand: verify names it.
	rows, _ := db.AuditLogs(ctx, store.AuditFilter{Action: "auth.login", Outcome: "failure", Limit: 1})
	if len(rows) != 1 {
		t.Fatalf("failed login row: %d", len(rows))
	}
	if _, err := db.SQL.Exec(db.Rebind(`UPDATE audit_logs SET outcome = 'success' WHERE event_id = ?`), rows[0].EventID); err != nil {
		t.Fatal(err)
	}
	if rep, _ := auditsink.Verify(ctx, db); rep.OK || rep.Broken == nil || rep.Broken.EventID != rows[0].EventID {
		t.Fatalf("verify after altering %s: %+v", rows[0].EventID, rep.Broken)
	}
}

// loginWhenReady logs the admin in once the first-start init created it.
func (in *instance) loginWhenReady(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var tok struct{ Token string }
		if in.call(t, "POST", "/auth/login", "", map[string]string{"email": "admin@example.com", "password": config.DefaultAdminPassword}, &tok) == 200 {
			return tok.Token
		}
		if time.Now().After(deadline) {
			t.Fatal("admin cannot log in: first-start init did not create it")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
