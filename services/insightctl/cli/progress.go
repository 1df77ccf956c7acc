package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/insightops/insightops/shared/client"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
)

// submitted handles a queued job: with --no-wait it prints the id (text)
// or the 202 answer (json) and returns; else it waits for the job
// (waitJob) and prints its final record, failing with a jobError when the
// job did not succeed.
func (e *env) submitted(ctx context.Context, c *client.Client, acc client.Accepted) error {
	if e.noWait {
		return e.emit(acc, func(w io.Writer) { fmt.Fprintln(w, acc.TaskID) })
	}
	rec, err := e.waitJob(ctx, c, acc.Job)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("stopped waiting; job %s goes on (insightctl jobs watch %s): %w", acc.TaskID, acc.TaskID, err)
		}
		return fmt.Errorf("wait for job %s (insightctl jobs watch %s): %w", acc.TaskID, acc.TaskID, err)
	}
	if err := e.emit(rec, func(w io.Writer) { e.printFinal(w, rec) }); err != nil {
		return err
	}
	return finalError(rec)
}

// finalError is nil for a succeeded job, else its jobError.
func finalError(rec jobs.Record) error {
	if rec.State == jobs.Succeeded {
		return nil
	}
	je := &jobError{id: rec.ID, state: string(rec.State)}
	if rec.Error != nil {
		je.code, je.message = string(rec.Error.Code), rec.Error.Message
	}
	return je
}

// waitJob follows the job's events until it is final: on a terminal with
// a live progress bar of its percent and step, else silently.
func (e *env) waitJob(ctx context.Context, c *client.Client, queued jobs.Record) (jobs.Record, error) {
	if !e.live() {
		return c.Wait(ctx, queued.ID, nil)
	}
	bar := newJobBar(e.io.Out, queued)
	rec, err := c.Wait(ctx, queued.ID, bar.update)
	bar.finish(rec, err)
	return rec, err
}

// jobBar is the live progress bar of one job: its kind, percent and the
// step now running, drawn by mpb.
type jobBar struct {
	p   *mpb.Progress
	bar *mpb.Bar

	mu   sync.Mutex
	step string
}

func newJobBar(w io.Writer, queued jobs.Record) *jobBar {
	jb := &jobBar{step: string(queued.State)}
	jb.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(30))
	jb.bar = jb.p.New(100, mpb.BarStyle().Lbound("[").Filler("=").Tip(">").Padding(" ").Rbound("]"),
		mpb.PrependDecorators(
			decor.Name(queued.Kind+" ", decor.WC{C: decor.DindentRight}),
			decor.Percentage(decor.WC{W: 5}),
		),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			jb.mu.Lock()
			defer jb.mu.Unlock()
			return " " + jb.step
		})),
	)
	return jb
}

// update moves the bar to the record's progress and step.
func (jb *jobBar) update(r jobs.Record) {
	jb.mu.Lock()
	switch {
	case r.Step != "":
		jb.step = r.Step
	default:
		jb.step = string(r.State)
	}
	if r.State.Final() {
		jb.step = string(r.State)
	}
	jb.mu.Unlock()
	if r.State == jobs.Succeeded {
		jb.bar.SetCurrent(100)
		return
	}
	jb.bar.SetCurrent(int64(r.Progress))
}

// finish completes or aborts the bar and waits until it is drawn.
func (jb *jobBar) finish(r jobs.Record, err error) {
	if err != nil || r.State != jobs.Succeeded {
		jb.bar.Abort(false)
	} else {
		jb.bar.SetCurrent(100)
	}
	jb.p.Wait()
}

// printFinal prints a final record as text: a summary per kind, the error
// of a failed one.
func (e *env) printFinal(w io.Writer, r jobs.Record) {
	fmt.Fprintf(w, "%s %s: %s\n", r.Kind, r.ID, e.state(r.State))
	if r.Error != nil {
		fmt.Fprintf(w, "  error: %s: %s\n", r.Error.Code, r.Error.Message)
	}
	if r.State != jobs.Succeeded || len(r.Result) == 0 {
		return
	}
	switch r.Kind {
	case jobs.KindBackupCreate:
		var res jobspec.BackupCreateResult
		if json.Unmarshal(r.Result, &res) == nil {
			fmt.Fprintf(w, "  archive  %s\n  size     %s\n  sha256   %s\n", res.Archive, humanBytes(res.Bytes), res.SHA256)
			for _, name := range []string{"system", "target", "chroma"} {
				if c, ok := res.Components[name]; ok {
					fmt.Fprintf(w, "  %-8s %s %s\n", name, c.Status, c.Reason)
				}
			}
			return
		}
	case jobs.KindBackupVerify:
		var res jobspec.BackupVerifyResult
		if json.Unmarshal(r.Result, &res) == nil {
			fmt.Fprintf(w, "  archive  %s\n  outcome  %s (%d files)\n", res.Archive, res.Outcome, len(res.Files))
			return
		}
	case jobs.KindBackupPrune:
		var res jobspec.BackupPruneResult
		if json.Unmarshal(r.Result, &res) == nil {
			deleted := res.Deleted
			verb := "deleted"
			if res.DryRun {
				deleted, verb = res.WouldDelete, "would delete"
			}
			fmt.Fprintf(w, "  kept %d, %s %d\n", len(res.Kept), verb, len(deleted))
			for _, a := range deleted {
				fmt.Fprintf(w, "  %s %s\n", verb, a.Name)
			}
			return
		}
	}
	b, err := json.MarshalIndent(r.Result, "  ", "  ")
	if err != nil {
		b = r.Result
	}
	fmt.Fprintf(w, "  result: %s\n", b)
}
