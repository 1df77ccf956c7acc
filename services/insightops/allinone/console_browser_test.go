package allinone_test

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/insightops/insightops/services/api/console"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/testkit"
)

// browser is a headless Chromium (Debian's chromium package) driven over
// the DevTools protocol, with a fresh profile; every request it makes is
// recorded, and a script added to every document records CSP violations
// in window.__csp.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	urls []string
}

// newBrowser starts Chromium for the test; without it the test is
// unavailable (a failure under CI).
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		testkit.Unavailable(t, "chromium", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	b := &browser{ctx: ctx}
	record := func(ev any) {
		var u string
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			u = e.Request.URL
		case network.EventRequestWillBeSent:
			u = e.Request.URL
		default:
			return
		}
		b.mu.Lock()
		b.urls = append(b.urls, u)
		b.mu.Unlock()
	}
	if err := chromedp.Listen(ctx, record); err != nil {
		testkit.Unavailable(t, "chromium", err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("enable network events: %v", err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__csp = []; document.addEventListener("securitypolicyviolation", function (e) { window.__csp.push(e.violatedDirective + " " + e.blockedURI); });`,
	}); err != nil {
		t.Fatalf("add the CSP recorder: %v", err)
	}
	return b
}

// do runs steps with a deadline, failing the test with what on error.
func (b *browser) do(t *testing.T, what string, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail(t, what, err)
	}
}

// fail ends the test with what went wrong and where the browser is.
func (b *browser) fail(t *testing.T, what string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	t.Fatalf("%s: %v (at %s: %.600s)", what, err, loc, body)
}

// get runs one action that returns a value, with a deadline.
func get[T any](t *testing.T, b *browser, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fail(t, what, err)
	}
	return v
}

// noCSPViolation fails when the current page recorded a CSP violation.
func (b *browser) noCSPViolation(t *testing.T) {
	t.Helper()
	v := get(t, b, "read CSP violations", chromedp.Evaluate[[]string](`window.__csp || []`))
	if len(v) > 0 {
		t.Errorf("CSP violations on the page: %v", v)
	}
}

// waitJob waits on a job page until its state is final and returns the
// state and the progress text the page shows.
func (b *browser) waitJob(t *testing.T, timeout time.Duration) (state, pct string) {
	t.Helper()
	b.do(t, "wait for the job page to show a final state", timeout, chromedp.WaitVisible(chromedp.CSS(`#job[data-final="true"]`)))
	state = get(t, b, "job state", chromedp.Text(chromedp.ID("job-state")))
	pct = get(t, b, "job progress", chromedp.Text(chromedp.ID("job-pct")))
	return strings.TrimSpace(state), strings.TrimSpace(pct)
}

func (b *browser) login(t *testing.T, base, email, password string) {
	t.Helper()
	b.do(t, "sign in as "+email, 30*time.Second,
		chromedp.Navigate(base+console.Prefix+"/"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="Main"]`)))
}

// awaited evaluates a promise-returning expression.
func awaited[T any](t *testing.T, b *browser, what, expr string) T {
	t.Helper()
	return get(t, b, what, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// TestConsoleInARealBrowser drives the operator console in headless
// Chromium against the real all-in-one: sign in, run a backup from the
// Backups page and watch its job reach 100%, receive its event stream on
// the cookie, verify the archive, restore it through the typed
// confirmation, train the knowledge base and search it, find those
// actions on the audit page and check its hash chain; then a viewer (forced to change the password a creator
// set) sees no action button and a POST forged from its page is refused
// by the API and audited. No page loads anything from another origin,
// none violates the CSP, and the CSP has no 'unsafe-inline'.
func TestConsoleInARealBrowser(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	chroma := testkit.Chroma(t)
	in := start(t, t.TempDir(), "CHROMA_URL", chroma.URL)
	admin := in.loginWhenReady(t)

	resp, err := testkit.HTTP.Get(in.base + console.Prefix + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if csp == "" || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Fatalf("Content-Security-Policy %q: want one without unsafe-inline/unsafe-eval", csp)
	}

	b.login(t, in.base, "admin@example.com", config.DefaultAdminPassword)
	b.noCSPViolation(t)

	// A backup from the UI, followed to 100%.
	b.do(t, "start a backup", 30*time.Second,
		chromedp.Navigate(in.base+"/ui/backups"),
		chromedp.WaitVisible(chromedp.CSS(`[data-action="backup"]`)),
		chromedp.SendKeys(chromedp.ID("note"), "from the browser"),
		chromedp.Click(chromedp.CSS(`[data-action="backup"]`)),
		chromedp.WaitVisible(chromedp.ID("job")))
	jobURL := get(t, b, "job page location", chromedp.Location())
	if state, pct := b.waitJob(t, 2*time.Minute); state != "succeeded" || pct != "100%" {
		t.Fatalf("backup job: %s at %s, want succeeded at 100%%", state, pct)
	}
	b.noCSPViolation(t)
	jobID := strings.TrimPrefix(strings.SplitN(jobURL, "?", 2)[0], in.base+"/ui/jobs/")

	// The job's event stream on the session cookie, as the page opens it.
	progress := awaited[float64](t, b, "read the job's event stream", fmt.Sprintf(`new Promise(function (resolve, reject) {
		var es = new EventSource("/ui/jobs/%s/events");
		es.addEventListener("job", function (e) { es.close(); resolve(JSON.parse(e.data).progress); });
		es.onerror = function () { es.close(); reject(new Error("event stream failed")); };
	})`, jobID))
	if progress != 100 {
		t.Fatalf("event stream: progress %v, want 100", progress)
	}

	// Verify the archive from the list.
	b.do(t, "open the backups", 30*time.Second,
		chromedp.Navigate(in.base+"/ui/backups"),
		chromedp.WaitVisible(chromedp.CSS(`[data-action="verify"]`)))
	href := get(t, b, "restore link", chromedp.AttributeValue(chromedp.CSS(`[data-action="restore"]`), "href"))
	archive := strings.TrimSuffix(strings.TrimPrefix(href.Value, "/ui/backups/"), "/restore")
	if archive == "" {
		t.Fatalf("restore link %q names no archive", href.Value)
	}
	b.do(t, "verify the archive", 30*time.Second,
		chromedp.Click(chromedp.CSS(`[data-action="verify"]`)),
		chromedp.WaitVisible(chromedp.ID("job")))
	if state, _ := b.waitJob(t, 2*time.Minute); state != "succeeded" {
		t.Fatalf("verify job: %s, want succeeded", state)
	}

	// Restore through the typed confirmation: the button stays disabled
	// until the name is typed exactly.
	b.do(t, "open the restore page", 30*time.Second,
		chromedp.Navigate(in.base+"/ui/backups"),
		chromedp.WaitVisible(chromedp.CSS(`[data-action="restore"]`)),
		chromedp.Click(chromedp.CSS(`[data-action="restore"]`)),
		chromedp.WaitVisible(chromedp.ID("confirm_name")),
		chromedp.SendKeys(chromedp.ID("confirm_name"), archive[:len(archive)-1]))
	if !get(t, b, "restore button state", chromedp.Evaluate[bool](`document.querySelector("[data-confirm-button]").disabled`)) {
		t.Fatal("the restore button is enabled before the archive's name is typed exactly")
	}
	b.noCSPViolation(t)
	b.do(t, "confirm the restore", 30*time.Second,
		chromedp.SendKeys(chromedp.ID("confirm_name"), archive[len(archive)-1:]),
		chromedp.Click(chromedp.CSS(`[data-confirm-button]`)),
		chromedp.WaitVisible(chromedp.ID("job")))
	if state, pct := b.waitJob(t, 3*time.Minute); state != "succeeded" || pct != "100%" {
		t.Fatalf("restore job: %s at %s, want succeeded at 100%%", state, pct)
	}

	// Train the knowledge base, then search it: entries come back nearest
	// first with their distances.
	b.do(t, "train", 30*time.Second,
		chromedp.Navigate(in.base+"/ui/knowledge"),
		chromedp.WaitVisible(chromedp.CSS(`[data-action="train"]`)),
		chromedp.Click(chromedp.CSS(`[data-action="train"]`)),
		chromedp.WaitVisible(chromedp.ID("job")))
	if state, pct := b.waitJob(t, 3*time.Minute); state != "succeeded" || pct != "100%" {
		t.Fatalf("train job: %s at %s, want succeeded at 100%%", state, pct)
	}
	b.do(t, "search", 30*time.Second,
		chromedp.Navigate(in.base+"/ui/knowledge"),
		chromedp.WaitVisible(chromedp.ID("kb-q")),
		chromedp.SendKeys(chromedp.ID("kb-q"), "total revenue per month"),
		chromedp.Click(chromedp.CSS(`[data-search]`)),
		chromedp.WaitVisible(chromedp.CSS(`#kb-entries td.distance`)))
	b.noCSPViolation(t)
	cells := get(t, b, "read the distances", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#kb-entries td.distance")).map(function (td) { return td.textContent; })`))
	if len(cells) == 0 {
		t.Fatal("the search found no entry")
	}
	distances := make([]float64, len(cells))
	for i, cell := range cells {
		d, err := strconv.ParseFloat(strings.TrimSpace(cell), 64)
		if err != nil || d < 0 {
			t.Fatalf("distance cell %q is not a distance", cell)
		}
		distances[i] = d
	}
	for i := 1; i < len(distances); i++ {
		if distances[i] < distances[i-1] {
			t.Fatalf("search distances %v are not nearest first", distances)
		}
	}

	// Clear one collection behind its typed name.
	b.do(t, "clear the sql collection", 30*time.Second,
		chromedp.Navigate(in.base+"/ui/knowledge"),
		chromedp.WaitVisible(chromedp.ID("clear-coll")),
		chromedp.SetValue(chromedp.ID("clear-coll"), "sql"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("clear-coll").dispatchEvent(new Event("change"))`),
		chromedp.SendKeys(chromedp.ID("clear-confirm"), "all"))
	if !get(t, b, "clear button state", chromedp.Evaluate[bool](`document.querySelector("#clear-form [data-confirm-button]").disabled`)) {
		t.Fatal("the clear button is enabled with the wrong collection name typed")
	}
	b.do(t, "type the collection's name", 30*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("clear-confirm").value = ""`),
		chromedp.SendKeys(chromedp.ID("clear-confirm"), "sql"))
	if state := get(t, b, "clear form state", chromedp.Evaluate[[]any](`[document.getElementById("clear-coll").value, document.getElementById("clear-confirm").value, document.querySelector("#clear-form [data-confirm-button]").disabled]`)); state[2] != false {
		t.Fatalf("clear form (collection, typed, disabled): %v", state)
	}
	b.do(t, "confirm the clear", 30*time.Second,
		chromedp.Click(chromedp.CSS(`#clear-form [data-confirm-button]`)),
		chromedp.WaitVisible(chromedp.ID("job")))
	if state, _ := b.waitJob(t, 2*time.Minute); state != "succeeded" {
		t.Fatalf("clear job: %s, want succeeded", state)
	}

	// Each of those actions is on the audit page, and the chain holds.
	for _, action := range []string{
		jobs.AuditAction(jobs.KindBackupCreate, "requested"), jobs.AuditAction(jobs.KindBackupVerify, "requested"),
		jobs.AuditAction(jobs.KindRestore, "requested"), jobs.AuditAction(jobs.KindChromaTrain, "requested"),
		jobs.AuditAction(jobs.KindRestore, "succeeded"), jobs.AuditAction(jobs.KindChromaClear, "requested"),
	} {
		found := 0
		for deadline := time.Now().Add(20 * time.Second); found == 0 && time.Now().Before(deadline); {
			b.do(t, "open the audit page for "+action, 30*time.Second,
				chromedp.Navigate(in.base+"/ui/audit?actor=admin%40example.com&action="+action), chromedp.WaitVisible(chromedp.ID("audit-rows")))
			found = get(t, b, "count "+action, chromedp.Evaluate[int](`Array.from(document.querySelectorAll("#audit-rows td.action")).filter(function (td) { return td.textContent === `+"`"+action+"`"+`; }).length`))
			if found == 0 {
				time.Sleep(300 * time.Millisecond) // the audit copy lags the stream a moment
			}
		}
		if found == 0 {
			t.Errorf("the audit page shows no %s by the admin", action)
		}
	}
	b.do(t, "check the hash chain", 30*time.Second,
		chromedp.Click(chromedp.CSS(`[data-check]`)), chromedp.WaitVisible(chromedp.ID("chain-result")))
	if chain := get(t, b, "chain result", chromedp.Text(chromedp.ID("chain-result"))); !strings.Contains(chain, "intact") {
		t.Fatalf("hash chain check: %q", chain)
	}
	b.noCSPViolation(t)

	// Every page, light and dark: no serious or critical accessibility
	// violation (axe-core), no CSP violation.
	for _, p := range []struct{ name, url string }{
		{"overview", in.base + "/ui/"}, {"jobs", in.base + "/ui/jobs"}, {"job", jobURL},
		{"backups", in.base + "/ui/backups"}, {"restore", in.base + "/ui/backups/" + archive + "/restore"},
		{"knowledge", in.base + "/ui/knowledge?q=total+revenue+per+month"}, {"audit", in.base + "/ui/audit?check=1"},
		{"accounts", in.base + "/ui/accounts"}, {"password", in.base + "/ui/password"},
	} {
		b.checkPage(t, p.name, p.url)
		b.fitsPhone(t, p.name, p.url)
	}

	// The keyboard reaches the skip link first; the live list's pause
	// control says what it did.
	b.do(t, "tab into the jobs page", 30*time.Second,
		chromedp.Navigate(in.base+"/ui/jobs"), chromedp.WaitVisible(chromedp.ID("live-toggle")), chromedp.KeyEvent("\t"))
	if focused := get(t, b, "focused element", chromedp.Evaluate[string](`document.activeElement.className + " " + document.activeElement.getAttribute("href")`)); focused != "skip #main" {
		t.Errorf("the first Tab focuses %q, want the skip link", focused)
	}
	b.do(t, "pause the live list", 30*time.Second, chromedp.Click(chromedp.ID("live-toggle")))
	if paused := get(t, b, "pause state", chromedp.Evaluate[[]string](`[document.getElementById("live-toggle").getAttribute("aria-pressed"), document.getElementById("live-status").textContent]`)); paused[0] != "true" || paused[1] != "updates paused" {
		t.Errorf("after pausing: %v", paused)
	}

	// A viewer, created with a password: forced to change it first.
	viewer, first, second := "viewer@example.com", "Viewer-first-"+testkit.RandomSuffix(), "Viewer-second-"+testkit.RandomSuffix()
	if code := in.call(t, "POST", "/admin/users", admin, map[string]any{"email": viewer, "role": "viewer", "password": first}, nil); code != http.StatusCreated {
		t.Fatalf("create viewer: %d", code)
	}
	b.do(t, "sign out", 30*time.Second,
		chromedp.Click(chromedp.CSS(`form[action="/ui/logout"] button`)),
		chromedp.WaitVisible(chromedp.ID("email")))
	b.checkPage(t, "login", in.base+"/ui/login")
	b.do(t, "sign in as the viewer and change the password", 30*time.Second,
		chromedp.SendKeys(chromedp.ID("email"), viewer),
		chromedp.SendKeys(chromedp.ID("password"), first),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("new_password")),
		chromedp.SendKeys(chromedp.ID("current_password"), first),
		chromedp.SendKeys(chromedp.ID("new_password"), second),
		chromedp.SendKeys(chromedp.ID("confirm_password"), second),
		chromedp.Submit(chromedp.ID("confirm_password")),
		chromedp.WaitVisible(chromedp.CSS(`p.flash`)))
	for _, p := range []string{in.base + "/ui/", in.base + "/ui/backups", in.base + "/ui/jobs", in.base + "/ui/knowledge", jobURL} {
		b.do(t, "open "+p, 30*time.Second, chromedp.Navigate(p), chromedp.WaitVisible(chromedp.CSS("main")))
		n := get(t, b, "count actions on "+p, chromedp.Evaluate[int](`document.querySelectorAll("[data-action], form[method=post]:not([action='/ui/logout'])").length`))
		if n != 0 {
			t.Errorf("the viewer sees %d action(s) on %s", n, p)
		}
		b.noCSPViolation(t)
	}
	// A POST forged from the viewer's page, with its CSRF token: the API's
	// role check refuses it.
	b.do(t, "open the backups as the viewer", 30*time.Second, chromedp.Navigate(in.base+"/ui/backups"), chromedp.WaitVisible(chromedp.CSS("main")))
	status := awaited[int](t, b, "forge a backup POST", `fetch("/ui/backups", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded",
		"X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content}, body: "note=forged"}).then(function (r) { return r.status; })`)
	if status != http.StatusForbidden {
		t.Fatalf("forged backup POST by a viewer: %d, want 403", status)
	}
	// Without the CSRF token it is refused before any call.
	status = awaited[int](t, b, "forge a POST without the CSRF token", `fetch("/ui/backups/prune", {method: "POST",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "mode=prune"}).then(function (r) { return r.status; })`)
	if status != http.StatusForbidden {
		t.Fatalf("POST without a CSRF token: %d, want 403", status)
	}
	var denied struct {
		Entries []struct {
			Actor  string `json:"actor"`
			Detail struct {
				Reason string `json:"reason"`
				Route  string `json:"route"`
			} `json:"detail"`
		} `json:"entries"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		in.call(t, "GET", "/admin/db/audit?action=auth.denied&actor="+viewer, admin, nil, &denied)
		if len(denied.Entries) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(denied.Entries) != 1 || denied.Entries[0].Detail.Reason != "insufficient_role" || denied.Entries[0].Detail.Route != "/admin/db/backup" {
		t.Fatalf("audit of the forged POST: %+v, want one insufficient_role denial on /admin/db/backup", denied.Entries)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.urls) == 0 {
		t.Fatal("no request recorded")
	}
	for _, u := range b.urls {
		if !strings.HasPrefix(u, in.base+"/") {
			t.Errorf("the console loaded %s, outside %s", u, in.base)
		}
	}
}
