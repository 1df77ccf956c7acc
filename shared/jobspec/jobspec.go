// Package jobspec is the typed contract of every job kind: one Args type
// (the job's params, as published on jobs.<kind> and stored in the job
// record) and one Result type (the record's result) per kind. The API
// decodes and validates requests into these types, the publisher submits
// them, the workers' handlers receive and return them, the scheduler
// builds them, and the OpenAPI document describes them: there is no other
// copy of a job's params or result.
//
// Every Args type has Kind(), the kind it is the params of, and
// Validate(), the checks that need nothing but the value itself (known
// components, an archive name's shape, a note's length). A failed
// Validate is a permanent jobs "invalid_params" error: the API answers it
// with 400, a worker fails the job at once instead of retrying.
// Checks that depend on the deployment (is Chroma enabled, is the archive
// listed) are made where that is known.
package jobspec

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/jobs"
)

// Args is implemented by the Args type of every job kind.
type Args = jobs.Args

// validComponents checks a list of backup components: each known
// (backupfmt.Components) and, unless repeats, listed once. what names the
// field in errors. A nil list is valid (every component); an empty one is
// not.
func validComponents(what string, comps []string, repeats bool) error {
	if comps == nil {
		return nil
	}
	if len(comps) == 0 {
		return jobs.Invalid("%s is empty: leave it out for every component", what)
	}
	seen := make(map[string]bool, len(comps))
	for _, c := range comps {
		if !slices.Contains(backupfmt.Components, c) {
			return jobs.Invalid("%s: component %q: accepted values: %s", what, truncate(c, 40), joinQuoted(backupfmt.Components))
		}
		if seen[c] && !repeats {
			return jobs.Invalid("%s: component %s is listed twice", what, c)
		}
		seen[c] = true
	}
	return nil
}

// validText accepts at most limit bytes of UTF-8 text without control
// characters other than newline and tab.
func validText(what, s string, limit int) error {
	if len(s) > limit {
		return jobs.Invalid("%s: %d bytes, at most %d accepted", what, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return jobs.Invalid("%s is not valid UTF-8", what)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return jobs.Invalid("%s holds a control character (%U)", what, r)
		}
	}
	return nil
}

// validArchiveName checks that name is exactly an archive name
// (backupfmt.ParseArchiveName).
func validArchiveName(what, name string) error {
	if _, err := backupfmt.ParseArchiveName(name); err != nil {
		return jobs.Invalid("%s %q is not a backup archive name (backup-<yyyymmddThhmmssZ>-<job id>.tar.gz or .tar.zst)", what, truncate(name, 100))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func joinQuoted(xs []string) string {
	var out strings.Builder
	for i, x := range xs {
		if i > 0 {
			out.WriteString(", ")
		}
		out.WriteString(x)
	}
	return out.String()
}

// ordered returns the members of comps in the order of backupfmt.Components.
func ordered(comps []string) []string {
	var out []string
	for _, c := range backupfmt.Components {
		if slices.Contains(comps, c) {
			out = append(out, c)
		}
	}
	return out
}
