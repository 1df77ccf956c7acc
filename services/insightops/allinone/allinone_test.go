package allinone_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/services/insightops/allinone/allinonetest"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/testkit"
)

type instance struct {
	base   string
	banner *allinonetest.Buffer
	deps   app.Deps
	stop   func() error
}

func start(t *testing.T, dataDir string, extra ...string) *instance {
	t.Helper()
	return startLogged(t, dataDir, nil, extra...)
}

// startLogged is start with the instance's JSON log lines written to logTo
// (nil: the test logger); extra are variable name, value pairs.
func startLogged(t *testing.T, dataDir string, logTo io.Writer, extra ...string) *instance {
	t.Helper()
	vars := map[string]string{}
	for i := 0; i+1 < len(extra); i += 2 {
		vars[extra[i]] = extra[i+1]
	}
	in := allinonetest.Start(t, allinonetest.Options{DataDir: dataDir, Vars: vars, LogTo: logTo})
	return &instance{base: in.URL, banner: in.Banner, deps: in.Deps, stop: in.Stop}
}

func (in *instance) call(t *testing.T, method, path, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, in.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := testkit.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

func (in *instance) login(t *testing.T) string {
	t.Helper()
	var tok struct{ Token string }
	if code := in.call(t, "POST", "/auth/login", "", map[string]string{"email": "admin@example.com", "password": config.DefaultAdminPassword}, &tok); code != 200 || tok.Token == "" {
		t.Fatalf("login: %d", code)
	}
	return tok.Token
}

func (in *instance) waitFinal(t *testing.T, token, id string) jobs.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var rec jobs.Record
		in.call(t, "GET", "/admin/db/tasks/"+id, token, nil, &rec)
		if rec.State.Final() {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s (%s)", id, rec.State, rec.Step)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type stepResult struct {
	Name   string         `json:"name"`
	Status string         `json:"status"`
	Detail map[string]any `json:"detail"`
}

func steps(t *testing.T, rec jobs.Record) map[string]stepResult {
	t.Helper()
	var r struct{ Steps []stepResult }
	if err := json.Unmarshal(rec.Result, &r); err != nil {
		t.Fatalf("result %s: %v", rec.Result, err)
	}
	out := map[string]stepResult{}
	for _, s := range r.Steps {
		out[s.Name] = s
	}
	return out
}

// TestFirstStartInitialisesAndServes is `make run` in a test: a fresh
// DATA_DIR, the all-in-one submits init itself, the admin logs in, a
// second init is a no-op, every worker kind is alive, and a restart on the
// same DATA_DIR does not run the first-start init again.
func TestFirstStartInitialisesAndServes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := start(t, dir)
	if b := in.bannerText(t); !strings.Contains(b, "first start: init job") || !strings.Contains(b, in.base+"/ui/") {
		t.Fatalf("banner lacks the first-start init job or the console:\n%s", b)
	}
	// The admin exists only once init has run: log in when it has.
	token := in.loginWhenReady(t)
	var list struct{ Tasks []jobs.Record }
	in.call(t, "GET", "/admin/db/tasks?kind=init.run", token, nil, &list)
	if len(list.Tasks) != 1 || list.Tasks[0].SubmittedBy != "system" {
		t.Fatalf("first-start init jobs: %+v", list.Tasks)
	}
	first := in.waitFinal(t, token, list.Tasks[0].ID)
	if first.State != jobs.Succeeded {
		t.Fatalf("first-start init: %s %+v", first.State, first.Error)
	}
	if s := steps(t, first); s["golden_copy"].Status != "ok" || s["demo_data"].Detail["inserted"].(float64) == 0 || s["admin_user"].Detail["created"] != true {
		t.Fatalf("first init steps: %+v", s)
	}

	var accepted struct {
		TaskID string `json:"task_id"`
	}
	if code := in.call(t, "POST", "/admin/db/init", token, nil, &accepted); code != http.StatusAccepted {
		t.Fatalf("POST init: %d", code)
	}
	second := in.waitFinal(t, token, accepted.TaskID)
	s := steps(t, second)
	if second.State != jobs.Succeeded || s["golden_copy"].Detail["action"] != "unchanged" || s["demo_data"].Detail["inserted"].(float64) != 0 || s["admin_user"].Detail["created"] != false {
		t.Fatalf("second init is not a no-op: %s %+v", second.State, s)
	}

	var health struct {
		Status  string
		Workers map[string][]map[string]any
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		in.call(t, "GET", "/admin/db/health", token, nil, &health)
		if len(health.Workers["init"]) == 1 && len(health.Workers["backup"]) == 1 && len(health.Workers["restore"]) == 1 && len(health.Workers["chroma"]) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live workers %+v", health.Workers)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The audit sink runs in the all-in-one: the logins are in audit_logs.
	deadline = time.Now().Add(10 * time.Second)
	for {
		var page struct{ Count int }
		in.call(t, "GET", "/admin/db/audit?action=auth.login&outcome=success", token, nil, &page)
		if page.Count >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no auth.login row in audit_logs: the audit sink is not running")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := in.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	again := start(t, dir)
	if b := again.bannerText(t); strings.Contains(b, "first start") {
		t.Fatalf("a restart ran the first-start init again:\n%s", b)
	}
	token = again.login(t)
	again.call(t, "GET", "/admin/db/tasks?kind=init.run", token, nil, &list)
	if len(list.Tasks) != 2 {
		t.Fatalf("after restart %d init jobs, want the 2 from before", len(list.Tasks))
	}
}

// bannerText waits for Run's whole banner (its last line names the health
// route: Run prints it after the first-start init was submitted, which may
// be after /health answers) and returns it.
func (in *instance) bannerText(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b := in.banner.String()
		if strings.Contains(b, "/admin/db/health\n\n") {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("the banner is incomplete after 30s:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
