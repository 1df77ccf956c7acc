package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/insightops/insightops/shared/client"
)

func (e *env) auditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read, verify and follow the audit trail (admin)",
		Example: `  insightctl audit list --action backup.requested --limit 20
  insightctl audit tail`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(e.auditList(), e.auditVerify(), e.auditTail())
	return cmd
}

// auditFlags adds the filters of audit list and audit tail.
func auditFlags(cmd *cobra.Command, f *client.AuditFilter) {
	fl := cmd.Flags()
	fl.StringVar(&f.Actor, "actor", "", "only this actor (an e-mail, token:<name>, scheduler, system)")
	fl.StringVar(&f.Action, "action", "", "only this action, e.g. backup.requested, auth.login")
	fl.StringVar(&f.Outcome, "outcome", "", "only this outcome: success, failure, denied")
	fl.StringVar(&f.Resource, "resource", "", "only this resource, e.g. backup, auth, system")
	fl.StringVar(&f.JobID, "job", "", "only the events of this job id")
}

func (e *env) printAudit(w io.Writer, a client.AuditEntry) {
	fmt.Fprintf(w, "%s  %-24s %-32s %-8s %-10s %s\n", a.At.UTC().Format(time.RFC3339), a.Actor, a.Action, a.Outcome, a.Resource, orDash(a.JobID))
}

func (e *env) auditList() *cobra.Command {
	var f client.AuditFilter
	var since, until string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List audit events, newest first",
		Example: `  insightctl audit list --limit 50
  insightctl audit list --actor admin@example.com --since 2026-12-04T00:00:00Z --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if f.Since, err = parseTime("--since", since); err != nil {
				return err
			}
			if f.Until, err = parseTime("--until", until); err != nil {
				return err
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			rows, err := c.Audit(cmd.Context(), f)
			if err != nil {
				return err
			}
			if e.output == OutputJSON {
				for _, r := range rows {
					if err := writeJSONLine(e.io.Out, r); err != nil {
						return err
					}
				}
				return nil
			}
			for _, r := range rows {
				e.printAudit(e.io.Out, r)
			}
			return nil
		},
	}
	auditFlags(cmd, &f)
	cmd.Flags().StringVar(&since, "since", "", "only events at or after this RFC 3339 time")
	cmd.Flags().StringVar(&until, "until", "", "only events before this RFC 3339 time")
	cmd.Flags().IntVar(&f.Limit, "limit", 0, "at most this many (1–1000; default 100)")
	cmd.Flags().IntVar(&f.Offset, "offset", 0, "skip this many")
	return cmd
}

// parseTime parses an RFC 3339 flag value ("" is the zero time).
func parseTime(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usagef("%s %q: want an RFC 3339 time such as 2026-12-04T10:00:00Z", flag, v)
	}
	return t, nil
}

func (e *env) auditVerify() *cobra.Command {
	return &cobra.Command{
		Use:     "verify",
		Short:   "Recompute the audit hash chain; exits 1 naming the first broken row",
		Example: `  insightctl audit verify`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			rep, err := c.VerifyAudit(cmd.Context())
			if err != nil {
				return err
			}
			if err := e.emit(rep, func(w io.Writer) {
				if rep.OK {
					fmt.Fprintf(w, "audit chain intact: %d rows\n", rep.Rows)
				}
			}); err != nil {
				return err
			}
			if !rep.OK {
				if rep.Broken != nil {
					return fmt.Errorf("audit chain broken at row %d (event %s, stream seq %d): %s", rep.Broken.ID, rep.Broken.EventID, rep.Broken.StreamSeq, rep.Broken.Reason)
				}
				return errors.New("audit chain broken")
			}
			return nil
		},
	}
}

// tailPage is how many rows audit tail asks for at once.
const tailPage = 1000

func (e *env) auditTail() *cobra.Command {
	var f client.AuditFilter
	var lines int
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow new audit events live (until interrupted)",
		Long: `Print the newest audit events, then every new one as it is stored, until
interrupted (Ctrl-C). The API has no audit stream route, so tail polls the
audit list every --interval for the rows stored after the last one it
printed (after_id) and prints each row once, in the order they were stored.`,
		Example: `  insightctl audit tail
  insightctl audit tail --outcome denied --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < 100*time.Millisecond {
				return usagef("--interval %s: at least 100ms", interval)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			return e.tail(cmd.Context(), c, f, lines, interval)
		},
	}
	auditFlags(cmd, &f)
	cmd.Flags().IntVar(&lines, "lines", 10, "how many past events to print first")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often to poll for new events")
	return cmd
}

// tail prints the last n events matching f, then new ones until ctx ends.
func (e *env) tail(ctx context.Context, c *client.Client, f client.AuditFilter, n int, interval time.Duration) error {
	var seen int64 // the highest row id printed (ids grow in storage order)
	show := func(rows []client.AuditEntry) error {
		for _, r := range rows {
			seen = max(seen, r.ID)
			if e.output == OutputJSON {
				if err := writeJSONLine(e.io.Out, r); err != nil {
					return err
				}
				continue
			}
			e.printAudit(e.io.Out, r)
		}
		return nil
	}
	// The newest n matches, printed oldest first; with n = 0 only the
	// newest one's id, to follow from.
	first := f
	first.Limit = max(n, 1)
	rows, err := c.Audit(ctx, first)
	if err != nil {
		return err
	}
	slices.Reverse(rows)
	if n == 0 {
		for _, r := range rows {
			seen = max(seen, r.ID)
		}
		rows = nil
	}
	if err := show(rows); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
		// Every row stored since, a page at a time.
		for {
			q := f
			q.Follow, q.AfterID, q.Limit = true, seen, tailPage
			page, err := c.Audit(ctx, q)
			if err != nil {
				if ctx.Err() != nil {
					return nil //nolint:nilerr // interrupted while polling: tail ends normally
				}
				return err
			}
			if err := show(page); err != nil {
				return err
			}
			if len(page) < tailPage {
				break
			}
		}
	}
}
