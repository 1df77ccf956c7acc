package jobs_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/testkit"
)

// Submit takes a job kind's typed args: their kind is the job's, they are
// validated before anything is written, and they become the record's
// params.
func ExamplePublisher_Submit() {
	b, stop, err := testkit.ExampleBus()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()
	pub := jobs.NewPublisher(b.JS, jobs.NewStore(b.Jobs), 3)

	rec, created, err := pub.Submit(ctx, jobs.Submission{
		Args:        jobspec.BackupVerifyArgs{Name: "backup-20261127T101500Z-01JD0000000000000000000000.tar.gz"},
		SubmittedBy: "ops@example.com",
	})
	fmt.Println(rec.Kind, rec.State, created, err)
	fmt.Println(string(rec.Params))

	// Invalid args are refused with their code; nothing is queued.
	_, _, err = pub.Submit(ctx, jobs.Submission{Args: jobspec.BackupVerifyArgs{Name: "../etc/passwd"}})
	fmt.Println(errors.Is(err, jobs.CodeInvalidParams), jobs.IsPermanent(err))
	// Output:
	// backup.verify queued true <nil>
	// {"name":"backup-20261127T101500Z-01JD0000000000000000000000.tar.gz"}
	// true true
}
