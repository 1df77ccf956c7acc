package allinone_test

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/insightops/insightops/services/insightops/dashboards"
	"github.com/insightops/insightops/shared/testkit"
)

// monitoringDir is deploy/monitoring from this package.
const monitoringDir = "../../../deploy/monitoring"

// metricName finds the insightops metrics a PromQL expression names.
var metricName = regexp.MustCompile(`\binsightops_[a-zA-Z0-9_]+\b`)

// alertRules reads the alert rules of deploy/monitoring/alerts.yml.
func alertRules(t *testing.T) []alertRule {
	t.Helper()
	var doc struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	b, err := os.ReadFile(filepath.Join(monitoringDir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var out []alertRule
	for _, g := range doc.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Annotations map[string]string `yaml:"annotations"`
}

// TestEveryAlertHasASummaryAndARunbookSection: each alert has a summary
// and a runbook_url naming a section of docs/RUNBOOK.md (the heading is
// the alert's name), and each of those sections is about an alert.
func TestEveryAlertHasASummaryAndARunbookSection(t *testing.T) {
	runbook, err := os.ReadFile("../../../docs/RUNBOOK.md")
	if err != nil {
		t.Fatal(err)
	}
	alerts := map[string]bool{}
	for _, r := range alertRules(t) {
		alerts[r.Alert] = true
		if strings.TrimSpace(r.Annotations["summary"]) == "" {
			t.Errorf("%s has no summary", r.Alert)
		}
		if want := "docs/RUNBOOK.md#" + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
		}
		if !strings.Contains(string(runbook), "\n## "+r.Alert+"\n") {
			t.Errorf("docs/RUNBOOK.md has no section \"## %s\"", r.Alert)
		}
		for _, part := range []string{"**Means.**", "**Check.**", "**Do.**"} {
			sec := string(runbook)
			if i := strings.Index(sec, "\n## "+r.Alert+"\n"); i >= 0 {
				sec = sec[i+1:]
				if j := strings.Index(sec[3:], "\n## "); j >= 0 {
					sec = sec[:j+3]
				}
				if !strings.Contains(sec, part) {
					t.Errorf("docs/RUNBOOK.md section %s lacks %s", r.Alert, part)
				}
			}
		}
	}
	if len(alerts) < 11 {
		t.Fatalf("%d alerts in alerts.yml, want the 11 of the runbook's table", len(alerts))
	}
	for _, m := range regexp.MustCompile(`(?m)^## (Insightops\w+)$`).FindAllStringSubmatch(string(runbook), -1) {
		if !alerts[m[1]] {
			t.Errorf("docs/RUNBOOK.md has a section for %s, which alerts.yml does not define", m[1])
		}
	}
}

// queriedMetrics returns every insightops metric named by the alert
// rules and the dashboards, each with where it is named.
func queriedMetrics(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range alertRules(t) {
		for _, m := range metricName.FindAllString(r.Expr, -1) {
			out[m] = "alert " + r.Alert
		}
	}
	for name := range dashboards.All() {
		var d dashboards.Dashboard
		b, err := os.ReadFile(filepath.Join(monitoringDir, "dashboards", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range d.Panels {
			for _, q := range p.Targets {
				for _, m := range metricName.FindAllString(q.Expr, -1) {
					out[m] = "dashboard " + name + " panel " + p.Title
				}
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d metrics found in the rules and dashboards: the extraction is broken", len(out))
	}
	return out
}

// exposed returns the sample names a /metrics answer holds (a
// histogram's _bucket, _sum and _count included).
func exposed(t *testing.T, text []byte) map[string]bool {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(text)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]bool{}
	for name, f := range fams {
		if len(f.GetMetric()) == 0 {
			continue
		}
		out[name] = true
		if f.GetType().String() == "HISTOGRAM" {
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		}
	}
	return out
}

// TestEveryMetricOfTheRulesAndDashboardsIsOnARunningInstance runs promtool
// on deploy/monitoring (check rules, test rules), starts the all-in-one,
// lets its first-start init job run and scrapes its /metrics: promtool
// check metrics lints it, and every metric an alert or a dashboard names
// must be there. Without promtool it skips, and fails under CI.
func TestEveryMetricOfTheRulesAndDashboardsIsOnARunningInstance(t *testing.T) {
	promtool := testkit.Tool(t, "promtool", "Debian's prometheus package")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = monitoringDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	in := start(t, t.TempDir())
	token := in.loginWhenReady(t)
	var list struct{ Tasks []struct{ ID string } }
	in.call(t, "GET", "/admin/db/tasks?kind=init.run", token, nil, &list)
	if len(list.Tasks) != 1 {
		t.Fatalf("first-start init jobs: %+v", list.Tasks)
	}
	in.waitFinal(t, token, list.Tasks[0].ID)

	resp, err := testkit.HTTP.Get(in.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	lint := exec.Command(promtool, "check", "metrics")
	lint.Stdin = strings.NewReader(string(text))
	if out, err := lint.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	have := exposed(t, text)
	var missing []string
	for m, where := range queriedMetrics(t) {
		if !have[m] {
			missing = append(missing, m+" ("+where+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("named by the rules or dashboards but not on the running instance's /metrics:\n  %s", strings.Join(missing, "\n  "))
	}
}
