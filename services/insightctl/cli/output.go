package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/insightops/insightops/shared/jobs"
)

// emit prints one value: a JSON line with --output json, else text(w).
func (e *env) emit(v any, text func(w io.Writer)) error {
	if e.output == OutputJSON {
		return writeJSONLine(e.io.Out, v)
	}
	text(e.io.Out)
	return nil
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// emitTable prints items: one JSON line each with --output json, else a
// table with header and one row per item.
func emitTable[T any](e *env, items []T, header []string, row func(T) []string) error {
	if e.output == OutputJSON {
		for _, it := range items {
			if err := writeJSONLine(e.io.Out, it); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, it := range items {
		fmt.Fprintln(tw, strings.Join(row(it), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// ANSI colours of job states on a terminal.
const (
	ansiGreen  = "\x1b[32m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiReset  = "\x1b[0m"
)

// state is a job state, coloured on a terminal.
func (e *env) state(s jobs.State) string {
	if !e.colour() {
		return string(s)
	}
	switch s {
	case jobs.Succeeded:
		return ansiGreen + string(s) + ansiReset
	case jobs.Failed:
		return ansiRed + string(s) + ansiReset
	case jobs.Cancelled, jobs.Running:
		return ansiYellow + string(s) + ansiReset
	}
	return string(s)
}

// when formats a time for tables ("-" for none).
func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// orDash is s, or "-" when empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// humanBytes formats a size (1.5 MiB).
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// printRecord prints a job record as text: its state line and its result
// or error.
func (e *env) printRecord(w io.Writer, r jobs.Record) {
	fmt.Fprintf(w, "job %s  %s  %s  %d%%", r.ID, r.Kind, e.state(r.State), r.Progress)
	if r.Step != "" {
		fmt.Fprintf(w, "  %s", r.Step)
	}
	fmt.Fprintln(w)
	if r.Error != nil {
		fmt.Fprintf(w, "error: %s: %s\n", r.Error.Code, r.Error.Message)
	}
	if len(r.Result) > 0 && r.State.Final() {
		var pretty strings.Builder
		if b, err := json.MarshalIndent(r.Result, "", "  "); err == nil {
			pretty.Write(b)
		} else {
			pretty.Write(r.Result)
		}
		fmt.Fprintf(w, "result: %s\n", pretty.String())
	}
}
