package cli

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/insightops/insightops/shared/client"
	"github.com/insightops/insightops/shared/jobs"
)

func (e *env) jobsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List, show, follow and cancel jobs",
		Example: `  insightctl jobs list --kind backup.create --state failed
  insightctl jobs watch 01JD5W2Q8X7V3M4N6P9R0S1T2V`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(e.jobsList(), e.jobsGet(), e.jobsWatch(), e.jobsCancel())
	return cmd
}

// jobArg completes job ids from the recent jobs.
func (e *env) jobArg(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := e.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	recs, err := c.Jobs(cmd.Context(), client.JobFilter{Limit: 50})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID + "\t" + r.Kind + " " + string(r.State)
	}
	return ids, cobra.ShellCompDirectiveNoFileComp
}

// validJobID refuses what cannot be a job id before asking the API.
func validJobID(id string) error {
	if !jobs.ValidID(id) {
		return usagef("%q is not a job id (a 26-character ULID)", id)
	}
	return nil
}

func (e *env) jobsList() *cobra.Command {
	var f client.JobFilter
	var state string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List recent jobs, newest first",
		Example: `  insightctl jobs list
  insightctl jobs list --kind restore.run --limit 5 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.Kind != "" && !slices.Contains(jobs.Kinds, f.Kind) {
				return usagef("--kind %q: want one of %s", f.Kind, strings.Join(jobs.Kinds, ", "))
			}
			f.State = jobs.State(state)
			if state != "" && !f.State.Valid() {
				return usagef("--state %q: want queued, running, succeeded, failed or cancelled", state)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			recs, err := c.Jobs(cmd.Context(), f)
			if err != nil {
				return err
			}
			return emitTable(e, recs, []string{"ID", "KIND", "STATE", "PROGRESS", "CREATED", "BY", "ERROR"}, func(r jobs.Record) []string {
				code := "-"
				if r.Error != nil {
					code = string(r.Error.Code)
				}
				return []string{r.ID, r.Kind, e.state(r.State), strconv.Itoa(r.Progress) + "%", when(&r.CreatedAt), orDash(r.SubmittedBy), code}
			})
		},
	}
	cmd.Flags().StringVar(&f.Kind, "kind", "", "only this kind: "+strings.Join(jobs.Kinds, ", "))
	cmd.Flags().StringVar(&state, "state", "", "only this state: queued, running, succeeded, failed, cancelled")
	cmd.Flags().IntVar(&f.Limit, "limit", 0, "at most this many (1–500; default 50)")
	_ = cmd.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions(jobs.Kinds, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions([]string{"queued", "running", "succeeded", "failed", "cancelled"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (e *env) jobsGet() *cobra.Command {
	return &cobra.Command{
		Use:               "get ID",
		Short:             "Show one job record with its result or error",
		Example:           `  insightctl jobs get 01JD5W2Q8X7V3M4N6P9R0S1T2V --output json | jq .result`,
		Args:              oneArg("ID"),
		ValidArgsFunction: e.jobArg,
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := validJobID(a[0]); err != nil {
				return err
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			rec, err := c.Job(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			return e.emit(rec, func(w io.Writer) { e.printRecord(w, rec) })
		},
	}
}

func (e *env) jobsWatch() *cobra.Command {
	return &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a job live until it ends (exit 3 when it fails)",
		Long: `Follow a job's events (Server-Sent Events) until it is final: a live progress
bar on a terminal; with --output json every change of the record as one
JSON line. Exits 0 when the job succeeded, 3 when it failed or was cancelled.`,
		Example: `  insightctl jobs watch 01JD5W2Q8X7V3M4N6P9R0S1T2V
  insightctl jobs watch 01JD5W2Q8X7V3M4N6P9R0S1T2V --output json | jq -r '"\(.progress)% \(.step)"'`,
		Args:              oneArg("ID"),
		ValidArgsFunction: e.jobArg,
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := validJobID(a[0]); err != nil {
				return err
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			var rec jobs.Record
			if e.output == OutputJSON {
				var werr error
				rec, err = c.Wait(cmd.Context(), a[0], func(r jobs.Record) {
					if werr == nil {
						werr = writeJSONLine(e.io.Out, r)
					}
				})
				if err == nil {
					err = werr
				}
			} else {
				var first jobs.Record
				if first, err = c.Job(cmd.Context(), a[0]); err != nil {
					return err
				}
				if rec, err = e.waitJob(cmd.Context(), c, first); err == nil {
					e.printFinal(e.io.Out, rec)
				}
			}
			if err != nil {
				return err
			}
			return finalError(rec)
		},
	}
}

func (e *env) jobsCancel() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a job: a queued one at once, a running one at its next step",
		Long: `Cancel a job. A queued job is cancelled at once; a running one is asked to
stop and ends cancelled at its next step. A job already final exits 6.`,
		Example:           `  insightctl jobs cancel 01JD5W2Q8X7V3M4N6P9R0S1T2V`,
		Args:              oneArg("ID"),
		ValidArgsFunction: e.jobArg,
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := validJobID(a[0]); err != nil {
				return err
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			rec, err := c.Cancel(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			return e.emit(rec, func(w io.Writer) {
				if rec.State.Final() {
					fmt.Fprintf(w, "job %s %s\n", rec.ID, e.state(rec.State))
					return
				}
				fmt.Fprintf(w, "job %s: cancellation requested; it stops at its next step\n", rec.ID)
			})
		},
	}
}
