package worker_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/worker"
)

// A typed handler receives its kind's decoded and validated args and
// returns its kind's result, which becomes the job record's result.
func ExampleHandle() {
	b, stop, err := testkit.ExampleBus()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	prune := func(ctx context.Context, job *worker.Job, args jobspec.BackupPruneArgs) (jobspec.BackupPruneResult, error) {
		return jobspec.BackupPruneResult{DryRun: args.DryRun, RetentionCount: 7, Kept: []jobspec.PrunedArchive{}, Deleted: []jobspec.PrunedArchive{}}, nil
	}
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(ctx, b, worker.Options{
			Kind: "backup", Handlers: worker.Handlers(worker.Handle(prune)), Log: slog.New(slog.DiscardHandler),
		})
	}()

	store := jobs.NewStore(b.Jobs)
	rec, _, err := jobs.NewPublisher(b.JS, store, 3).Submit(ctx, jobs.Submission{Args: jobspec.BackupPruneArgs{DryRun: true}, SubmittedBy: "ops@example.com"})
	if err != nil {
		fmt.Println(err)
		return
	}
	updates, err := store.Watch(ctx, rec.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	for rec = range updates {
		if rec.State.Final() {
			break
		}
	}
	fmt.Println(rec.Kind, rec.State)
	fmt.Println(string(rec.Result))
	cancel() // the worker drains and stops
	<-done
	// Output:
	// backup.prune succeeded
	// {"dry_run":true,"retention_count":7,"kept":[],"deleted":[]}
}
