package allinone_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/insightops/insightops/services/api/httpapi"
	"github.com/insightops/insightops/services/api/httpapi/openapicheck"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/testkit"
)

// TestRealJobBodiesMatchTheOpenAPIDescription runs every job kind through
// the all-in-one with a real Chroma and checks each exchange — requests
// with their bodies, 202 answers, the task JSON once succeeded (its result
// against the schema documented for its kind), the backup list, the
// knowledge base and the target health — against GET /openapi.json with
// kin-openapi.
func TestRealJobBodiesMatchTheOpenAPIDescription(t *testing.T) {
	t.Parallel()
	chroma := testkit.Chroma(t)
	in := start(t, t.TempDir(), "CHROMA_URL", chroma.URL)
	token := in.loginWhenReady(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	chk, err := openapicheck.Fetch(ctx, testkit.HTTP, in.base)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	// do sends one request, checks the exchange and decodes the body into out.
	do := func(method, target string, body any, out any) int {
		t.Helper()
		var raw []byte
		if body != nil {
			raw, _ = json.Marshal(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, in.base+target, bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if raw != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := testkit.HTTP.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		defer res.Body.Close()
		rb, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		x := openapicheck.Exchange{Method: method, Target: target, Header: req.Header, Body: raw, Status: res.StatusCode, RespHeader: res.Header, RespBody: rb}
		if err := chk.Check(ctx, x); err != nil {
			t.Errorf("%v\nbody: %s", err, rb)
		}
		checked++
		if out != nil {
			if err := json.Unmarshal(rb, out); err != nil {
				t.Fatalf("%s %s: %v: %s", method, target, err, rb)
			}
		}
		return res.StatusCode
	}
	// run submits a job (retrying while a lease of the previous one is
	// still held), waits until it succeeded, checks its task JSON, and its
	// result against the schema documented for its kind.
	run := func(method, target string, body any) jobs.Record {
		t.Helper()
		var acc struct {
			TaskID string `json:"task_id"`
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			code := do(method, target, body, &acc)
			if code == http.StatusAccepted {
				break
			}
			if code != http.StatusConflict || time.Now().After(deadline) {
				t.Fatalf("%s %s: %d", method, target, code)
			}
			time.Sleep(200 * time.Millisecond)
		}
		rec := in.waitFinal(t, token, acc.TaskID)
		if rec.State != jobs.Succeeded {
			t.Fatalf("%s %s: job %s %+v", method, target, rec.State, rec.Error)
		}
		var got map[string]any
		do("GET", "/admin/db/tasks/"+acc.TaskID, nil, &got)
		name, ok := httpapi.ResultSchemas[rec.Kind]
		if !ok {
			t.Fatalf("no result schema documented for %s", rec.Kind)
		}
		if err := chk.CheckValue(name, got["result"]); err != nil {
			t.Errorf("%s result: %v\nresult: %s", rec.Kind, err, rec.Result)
		}
		t.Logf("%s result: %s", rec.Kind, rec.Result)
		return rec
	}

	run("POST", "/admin/db/init", map[string]any{})
	run("POST", "/admin/db/chroma/train", map[string]any{})
	do("GET", "/admin/db/chroma/knowledge-base?limit=5", nil, nil)
	do("GET", "/admin/db/chroma/knowledge-base?q=unpaid+invoices&limit=3", nil, nil)
	run("POST", "/admin/db/backup", map[string]any{"components": []string{"system", "target", "chroma"}, "note": "openapi"})
	var list struct {
		Backups []struct{ Filename string } `json:"backups"`
	}
	do("GET", "/admin/db/backup/list", nil, &list)
	if len(list.Backups) != 1 {
		t.Fatalf("backups %+v", list.Backups)
	}
	archive := list.Backups[0].Filename
	run("POST", "/admin/db/backup/"+archive+"/verify", map[string]any{})
	do("GET", "/admin/db/backup/list", nil, nil) // now with its verification
	run("POST", "/admin/db/backup/prune", map[string]any{"dry_run": true})
	run("DELETE", "/admin/db/chroma/clear?confirm=true&collection_name=sql", nil)
	run("POST", "/admin/db/backup/restore/"+archive+"?confirm=true", map[string]any{})
	do("GET", "/admin/db/target/health", nil, nil)
	do("GET", "/admin/db/tasks?limit=50", nil, nil)
	do("GET", "/admin/db/health", nil, nil)
	t.Logf("checked %d exchanges against /openapi.json", checked)
}
