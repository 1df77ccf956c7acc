// Package doccheck holds only tests: they keep docs/ARCHITECTURE.md in step
// with the code, so that a job kind, a name on the bus, a lease, a role, a
// configuration variable or a JSON field of the contract's messages added
// to the code but not to the document (or removed from the code but still
// documented) fails make test. The API's route table is checked the same
// way by services/api/httpapi (TestArchitectureDocListsEveryRoute).
package doccheck

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auditsink"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/presence"
)

// docPath is the architecture document, from this package's directory.
const docPath = "../../docs/ARCHITECTURE.md"

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("read the architecture document: %v", err)
	}
	return string(b)
}

// mentioned reports whether doc names s as code (`s`) or as a JSON key ("s").
func mentioned(doc, s string) bool {
	return strings.Contains(doc, "`"+s+"`") || strings.Contains(doc, `"`+s+`"`)
}

// jsonFields returns the JSON names of v's struct fields (those not
// marshalled, tagged "-", are left out).
func jsonFields(v any) []string {
	var out []string
	typ := reflect.TypeOf(v)
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case !f.IsExported() || name == "-":
			continue
		case name == "":
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// section returns the text under the heading line title (e.g. "### Streams")
// up to the next heading of the same or a higher level; "" when absent.
func section(doc, title string) string {
	level := strings.Index(title, " ")
	_, rest, ok := strings.Cut(doc, "\n"+title+"\n")
	if !ok {
		return ""
	}
	lines := strings.Split(rest, "\n")
	for i, l := range lines {
		if n := strings.IndexFunc(l, func(r rune) bool { return r != '#' }); n > 0 && n <= level && strings.HasPrefix(l[n:], " ") {
			return strings.Join(lines[:i], "\n")
		}
	}
	return rest
}

// firstCells returns the code in the first cell of each table row of text
// ("| `JOBS` | …" gives JOBS).
func firstCells(text string) []string {
	var out []string
	for l := range strings.SplitSeq(text, "\n") {
		if !strings.HasPrefix(l, "| `") {
			continue
		}
		cell := strings.TrimSpace(strings.Split(l, "|")[1])
		out = append(out, strings.Trim(cell, "`"))
	}
	return out
}

func streamNames() (names, subjects []string) {
	for _, s := range bus.StreamConfigs(bus.Settings{}) {
		names = append(names, s.Name)
		subjects = append(subjects, s.Subjects...)
	}
	return names, subjects
}

func bucketNames() []string {
	var out []string
	for _, b := range bus.BucketConfigs(bus.Settings{}) {
		out = append(out, b.Bucket)
	}
	return append(out, bus.BucketBackups)
}

func TestArchitectureDocNamesEveryContractName(t *testing.T) {
	t.Parallel()
	doc := readDoc(t)
	streams, streamSubjects := streamNames()
	var kindSubjects, varNames, roles, states []string
	for _, k := range jobs.Kinds {
		kindSubjects = append(kindSubjects, jobs.Subject(k))
	}
	for _, v := range config.Vars {
		varNames = append(varNames, v.Name)
	}
	for _, r := range auth.Roles {
		roles = append(roles, string(r))
	}
	for _, s := range []jobs.State{jobs.Queued, jobs.Running, jobs.Succeeded, jobs.Failed, jobs.Cancelled} {
		states = append(states, string(s))
	}
	cases := []struct {
		what  string
		names []string
	}{
		{"job kind", jobs.Kinds},
		{"job subject", kindSubjects},
		{"worker kind (durable consumer)", jobs.WorkerKinds},
		{"audit sink consumer", []string{auditsink.Consumer}},
		{"stream", streams},
		{"stream subject", streamSubjects},
		{"bucket", bucketNames()},
		{"lease", locks.Order},
		{"role", roles},
		{"job state", states},
		{"audit outcome", []string{audit.Success, audit.Failure, audit.Denied}},
		{"lease audit action", []string{"<kind>." + locks.PhaseLockWait, "<kind>." + locks.PhaseLockAcquired}},
		{"configuration audit action", []string{app.ActionConfigInvalid, app.ActionConfigWarning}},
		{"configuration variable", varNames},
		{"archive component", backupfmt.Components},
		{"archive entry", []string{backupfmt.ManifestName}},
		{"archive compression", []string{string(backupfmt.Gzip), string(backupfmt.Zstd)}},
		{"archive component status", []string{backupfmt.StatusIncluded, backupfmt.StatusSkipped}},
		{"archive file kind", []string{backupfmt.KindPGDump, backupfmt.KindSQLite, backupfmt.KindJSONL, backupfmt.KindJSON}},
		{"job record field", jsonFields(jobs.Record{})},
		{"job error field", jsonFields(jobs.Error{})},
		{"job command field", jsonFields(jobs.Command{})},
		{"audit event field", jsonFields(audit.Event{})},
		{"manifest field", jsonFields(backupfmt.Manifest{})},
		{"manifest component field", jsonFields(backupfmt.Component{})},
		{"manifest file field", jsonFields(backupfmt.File{})},
		{"manifest part field", jsonFields(backupfmt.Part{})},
		{"lease holder field", jsonFields(locks.Holder{})},
		{"worker presence field", jsonFields(presence.Worker{})},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			if len(c.names) == 0 {
				t.Fatal("no names to look for: the code's list is empty")
			}
			for _, n := range c.names {
				if !mentioned(doc, n) {
					t.Errorf("docs/ARCHITECTURE.md does not name the %s %q (as `%s`)", c.what, n, n)
				}
			}
		})
	}
}

// TestArchitectureDocNamesNothingTheCodeLacks checks the other direction,
// where the document lists names in a place of their own: a job kind's
// heading, a row of the stream or bucket table, a variable of the
// configuration section must each exist in the code. Every job kind must
// also have its own heading (its section: subject, params, result).
func TestArchitectureDocNamesNothingTheCodeLacks(t *testing.T) {
	t.Parallel()
	doc := readDoc(t)
	streams, _ := streamNames()
	var varNames []string
	for _, v := range config.Vars {
		varNames = append(varNames, v.Name)
	}
	var headings []string
	for _, m := range regexp.MustCompile("(?m)^### `([^`]+)`$").FindAllStringSubmatch(doc, -1) {
		headings = append(headings, m[1])
	}
	envVar := regexp.MustCompile("`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`")
	var documentedVars []string
	for _, m := range envVar.FindAllStringSubmatch(section(doc, "## Configuration"), -1) {
		documentedVars = append(documentedVars, m[1])
	}
	cases := []struct {
		what       string
		documented []string
		known      []string
	}{
		{"job kind (### heading)", headings, jobs.Kinds},
		{"stream (row of ### Streams)", firstCells(section(doc, "### Streams")), streams},
		{"bucket (row of ### Buckets)", firstCells(section(doc, "### Buckets")), bucketNames()},
		{"configuration variable (## Configuration)", documentedVars, varNames},
	}
	for _, k := range jobs.Kinds {
		if !slices.Contains(headings, k) {
			t.Errorf("docs/ARCHITECTURE.md has no section \"### `%s`\" for the job kind %s (its subject, params and result)", k, k)
		}
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			if len(c.documented) == 0 {
				t.Fatalf("found no %s in docs/ARCHITECTURE.md: was its section renamed?", c.what)
			}
			for _, d := range c.documented {
				if !slices.Contains(c.known, d) {
					t.Errorf("docs/ARCHITECTURE.md documents the %s %q, which the code does not have (known: %v)", c.what, d, c.known)
				}
			}
		})
	}
}

// TestArchitectureDocNamesEveryErrorCode: the "Error codes" section names
// every code of the jobs.Codes table, so a new code cannot go undocumented.
func TestArchitectureDocNamesEveryErrorCode(t *testing.T) {
	t.Parallel()
	errs := section(readDoc(t), "## Error codes")
	if errs == "" {
		t.Fatal(`docs/ARCHITECTURE.md has no "Error codes" section`)
	}
	for _, c := range jobs.Codes {
		if !mentioned(errs, string(c.Code)) {
			t.Errorf("error code %q (%s) is not named in the Error codes section", c.Code, c.Meaning)
		}
	}
}
