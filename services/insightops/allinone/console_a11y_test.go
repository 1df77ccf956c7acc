package allinone_test

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// axeSource is axe-core's axe.min.js as published on npm (testdata/axe-core).
//
//go:embed testdata/axe-core/axe.min.js
var axeSource string

//go:embed testdata/axe-core/SHA256SUMS
var axeSums string

// TestVendoredAxeCoreIsThePinnedRelease: the vendored axe.min.js is byte
// for byte the file whose checksum SHA256SUMS records.
func TestVendoredAxeCoreIsThePinnedRelease(t *testing.T) {
	t.Parallel()
	want, name, ok := strings.Cut(strings.TrimSpace(axeSums), "  ")
	if !ok || name != "axe.min.js" {
		t.Fatalf("SHA256SUMS %q: want \"<sha256>  axe.min.js\"", axeSums)
	}
	sum := sha256.Sum256([]byte(axeSource))
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("testdata/axe-core/axe.min.js has sha256 %s, SHA256SUMS records %s", got, want)
	}
	if !strings.HasPrefix(axeSource, "/*! axe v4.14.1") {
		t.Fatalf("axe.min.js is not axe-core 4.14.1: %.40q", axeSource)
	}
}

// axeViolation is one serious or critical finding of axe-core.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// checkPage loads url, waits for its main element and checks it in the
// light and the dark colour scheme: no CSP violation and no serious or
// critical axe-core violation. With CONSOLE_SCREENSHOTS set (make
// screenshots) it also saves a PNG of the page, light, as <name>.png in
// that directory.
func (b *browser) checkPage(t *testing.T, name, url string) {
	t.Helper()
	for _, scheme := range []string{"light", "dark"} {
		if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		}); err != nil {
			t.Fatalf("emulate %s: %v", scheme, err)
		}
		b.do(t, "open "+url, 30*time.Second, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("main")))
		b.noCSPViolation(t)
		// Evaluated by the DevTools protocol, not by the page, so the
		// page's CSP (no eval, own scripts only) does not apply to it.
		get(t, b, "inject axe-core", chromedp.Evaluate[chromedp.Void](axeSource))
		raw := awaited[[]byte](t, b, "run axe-core on "+name, `axe.run(document, {resultTypes: ["violations"]}).then(function (r) {
			return r.violations.filter(function (v) { return v.impact === "serious" || v.impact === "critical"; })
				.map(function (v) { return {id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(function (n) { return n.target.join(" "); })}; });
		})`)
		var found []axeViolation
		if err := json.Unmarshal(raw, &found); err != nil {
			t.Fatalf("axe-core result on %s: %v (%s)", name, err, raw)
		}
		for _, v := range found {
			t.Errorf("%s (%s): axe-core %s %s: %s on %v", name, scheme, v.Impact, v.ID, v.Help, v.Nodes)
		}
		if dir := os.Getenv("CONSOLE_SCREENSHOTS"); dir != "" && scheme == "light" {
			png := get(t, b, "screenshot "+name, chromedp.CaptureScreenshot())
			if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
				t.Fatalf("save the screenshot of %s: %v", name, err)
			}
		}
	}
	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
		t.Fatalf("reset the colour scheme: %v", err)
	}
}

// fitsPhone loads url at a phone's width (390 CSS pixels) and fails when
// the page scrolls sideways (wide tables scroll inside their own box).
func (b *browser) fitsPhone(t *testing.T, name, url string) {
	t.Helper()
	if _, err := chromedp.Call(b.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: 390, Height: 844, DeviceScaleFactor: 1, Mobile: true,
	}); err != nil {
		t.Fatalf("emulate a phone: %v", err)
	}
	defer func() {
		if _, err := chromedp.Call(b.ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
			t.Fatalf("end the phone emulation: %v", err)
		}
	}()
	b.do(t, "open "+url+" at phone width", 30*time.Second, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("main")))
	over := get(t, b, "page width on "+name, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
	if len(over) == 2 && over[0] > over[1]+1 {
		t.Errorf("%s at phone width: the page is %d px wide in a %d px window", name, over[0], over[1])
	}
}
