package jobsubmit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/jobsubmit"
	"github.com/insightops/insightops/shared/testkit"
)

// step is one submission of a case's job.
type step struct {
	// bare submits through jobs.Publisher alone: a submitter that died
	// between the submission and its audit event.
	bare bool
	// state, when set, moves the job's record there first (a worker
	// picked it up).
	state jobs.State
	// params, when set, replaces the case's params (a conflicting reuse
	// of the key).
	args jobs.Args
	// wantCreated is the created flag the step must return.
	wantCreated bool
	// wantErr, when set, is the error the step must return (errors.Is).
	wantErr error
}

// TestSubmit runs each case's steps against a real JetStream and counts
// the job's requested events twice: every publish (a core subscription on
// audit.>, which sees duplicates too) and every stored event (audit.Read,
// after Nats-Msg-Id deduplication).
// verifyArchive is an archive name for the backup.verify cases.
const verifyArchive = "backup-20260101T000000Z-01JD5ZQ8W3K9V4T7X2M6N1P0RT.tar.gz"

func TestSubmit(t *testing.T) {
	t.Parallel()
	b, ns := testkit.Bus(t)
	watch := testkit.Connect(t, ns)
	pub := jobs.NewPublisher(b.JS, jobs.NewStore(b.Jobs), 3)
	store := jobs.NewStore(b.Jobs)
	ap := audit.NewPublisher(b.JS, testkit.Logger(t))

	const actor = "admin@example.com"
	caller := audit.Event{Actor: actor, Role: "admin", SourceIP: "10.0.0.7", RequestID: "req-1",
		Detail: map[string]any{"archive": "a.tar.zst"}}

	for i, tc := range []struct {
		name   string
		policy jobsubmit.Policy
		args   jobs.Args
		keyed  bool
		steps  []step
		// wantPublished is how many requested events were sent, and
		// wantReplayed the replayed flag of each stored one, in order
		// (EveryCall; nil for OncePerJob, which has no such flag).
		wantPublished int
		wantStored    int
		wantReplayed  []bool
	}{
		{
			name: "every call: created, one event", policy: jobsubmit.EveryCall, args: jobspec.InitArgs{},
			steps:         []step{{wantCreated: true}},
			wantPublished: 1, wantStored: 1, wantReplayed: []bool{false},
		},
		{
			name: "every call: a replay is a second event, marked replayed", policy: jobsubmit.EveryCall, args: jobspec.BackupCreateArgs{Note: "n"}, keyed: true,
			steps:         []step{{wantCreated: true}, {}},
			wantPublished: 2, wantStored: 2, wantReplayed: []bool{false, true},
		},
		{
			name: "every call: a replay of a running job is audited too", policy: jobsubmit.EveryCall, args: jobspec.BackupCreateArgs{Note: "n"}, keyed: true,
			steps:         []step{{wantCreated: true}, {state: jobs.Running}},
			wantPublished: 2, wantStored: 2, wantReplayed: []bool{false, true},
		},
		{
			name: "every call: a conflicting key submits and audits nothing", policy: jobsubmit.EveryCall, args: jobspec.BackupCreateArgs{Note: "n"}, keyed: true,
			steps:         []step{{wantCreated: true}, {args: jobspec.BackupCreateArgs{Note: "other"}, wantErr: jobs.ErrIdempotencyConflict}},
			wantPublished: 1, wantStored: 1, wantReplayed: []bool{false},
		},
		{
			name: "once per job: created, one event", policy: jobsubmit.OncePerJob, args: jobspec.BackupVerifyArgs{Name: verifyArchive}, keyed: true,
			steps:         []step{{wantCreated: true}},
			wantPublished: 1, wantStored: 1,
		},
		{
			name: "once per job: unkeyed, one event", policy: jobsubmit.OncePerJob, args: jobspec.BackupVerifyArgs{Name: verifyArchive},
			steps:         []step{{wantCreated: true}},
			wantPublished: 1, wantStored: 1,
		},
		{
			name: "once per job: a replay while queued publishes the same id, stored once", policy: jobsubmit.OncePerJob, args: jobspec.BackupCreateArgs{Note: "n"}, keyed: true,
			steps:         []step{{wantCreated: true}, {}, {}},
			wantPublished: 3, wantStored: 1,
		},
		{
			name: "once per job: a creator that died before auditing is audited by the replay while queued", policy: jobsubmit.OncePerJob, args: jobspec.BackupCreateArgs{Note: "n"}, keyed: true,
			steps:         []step{{bare: true, wantCreated: true}, {}},
			wantPublished: 1, wantStored: 1,
		},
		{
			name: "once per job: a replay once running publishes nothing", policy: jobsubmit.OncePerJob, args: jobspec.BackupCreateArgs{Note: "n"}, keyed: true,
			steps:         []step{{wantCreated: true}, {state: jobs.Running}},
			wantPublished: 1, wantStored: 1,
		},
		{
			name: "once per job: a running job whose creator died is not audited by a replay", policy: jobsubmit.OncePerJob, args: jobspec.BackupCreateArgs{Note: "n"}, keyed: true,
			steps:         []step{{bare: true, wantCreated: true}, {state: jobs.Running}},
			wantPublished: 0, wantStored: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			sub, err := watch.SubscribeSync("audit.>")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sub.Unsubscribe() }()
			if err := watch.Flush(); err != nil {
				t.Fatal(err)
			}

			submission := jobs.Submission{Args: tc.args, SubmittedBy: actor}
			if tc.keyed {
				submission.IdempotencyKey = fmt.Sprintf("key-%d", i)
			}
			callerDetail := maps.Clone(caller.Detail)
			var jobID string
			for n, st := range tc.steps {
				if st.state != "" {
					if _, err := store.Update(ctx, jobID, func(r *jobs.Record) error { r.State = st.state; return nil }); err != nil {
						t.Fatalf("step %d: set state: %v", n, err)
					}
				}
				s := submission
				if st.args != nil {
					s.Args = st.args
				}
				var rec jobs.Record
				var created bool
				if st.bare {
					rec, created, err = pub.Submit(ctx, s)
				} else {
					rec, created, err = jobsubmit.Submit(ctx, pub, ap, s, caller, jobsubmit.Options{Policy: tc.policy})
				}
				switch {
				case st.wantErr != nil && !errors.Is(err, st.wantErr):
					t.Fatalf("step %d: err %v, want %v", n, err, st.wantErr)
				case st.wantErr == nil && err != nil:
					t.Fatalf("step %d: %v", n, err)
				case created != st.wantCreated:
					t.Fatalf("step %d: created %v, want %v", n, created, st.wantCreated)
				case jobID != "" && rec.ID != jobID:
					t.Fatalf("step %d: job %s, want the first step's %s", n, rec.ID, jobID)
				}
				jobID = rec.ID
			}
			if !maps.Equal(caller.Detail, callerDetail) {
				t.Errorf("Submit changed the caller's detail: %v", caller.Detail)
			}

			published := 0
			for {
				m, err := sub.NextMsg(300 * time.Millisecond)
				if errors.Is(err, nats.ErrTimeout) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				var e audit.Event
				if err := json.Unmarshal(m.Data, &e); err != nil {
					t.Fatalf("published %s: %v", m.Data, err)
				}
				if e.JobID == jobID {
					published++
				}
			}
			all, err := audit.Read(ctx, b.JS, "audit.>")
			if err != nil {
				t.Fatal(err)
			}
			var stored []audit.Event
			for _, e := range all {
				if e.JobID == jobID {
					stored = append(stored, e)
				}
			}
			if published != tc.wantPublished || len(stored) != tc.wantStored {
				t.Fatalf("job %s: %d events published, %d stored; want %d, %d: %+v", jobID, published, len(stored), tc.wantPublished, tc.wantStored, stored)
			}

			ids := map[string]bool{}
			for n, e := range stored {
				if ids[e.ID] {
					t.Errorf("event id %s stored twice", e.ID)
				}
				ids[e.ID] = true
				switch tc.policy {
				case jobsubmit.OncePerJob:
					if e.ID != jobsubmit.RequestedID(jobID) || e.ID != audit.DerivedID(jobID, "requested") {
						t.Errorf("event id %s, want the derived %s", e.ID, audit.DerivedID(jobID, "requested"))
					}
					if _, ok := e.Detail["replayed"]; ok {
						t.Errorf("once-per-job event has detail replayed: %v", e.Detail)
					}
				case jobsubmit.EveryCall:
					if e.ID == "" || e.ID == audit.DerivedID(jobID, "requested") {
						t.Errorf("event id %q, want a fresh one", e.ID)
					}
					if e.Detail["replayed"] != tc.wantReplayed[n] {
						t.Errorf("event %d: replayed %v, want %v", n, e.Detail["replayed"], tc.wantReplayed[n])
					}
				}
				if e.Action != jobs.AuditAction(tc.args.Kind(), "requested") || e.Resource != jobs.WorkerKind(tc.args.Kind()) ||
					e.Subject() != "audit."+jobs.AuditAction(tc.args.Kind(), "requested") || e.Outcome != audit.Success ||
					e.Actor != actor || e.Role != "admin" || e.SourceIP != "10.0.0.7" || e.RequestID != "req-1" || e.At.IsZero() {
					t.Errorf("event %+v", e)
				}
				if e.Detail["kind"] != tc.args.Kind() || e.Detail["archive"] != "a.tar.zst" {
					t.Errorf("detail %v lacks the kind or the caller's entries", e.Detail)
				}
				if k, ok := e.Detail["idempotency_key"]; ok != tc.keyed || (ok && k != submission.IdempotencyKey) {
					t.Errorf("detail idempotency_key %v (present %v), want %q", k, ok, submission.IdempotencyKey)
				}
			}
		})
	}
}

// TestSubmitWithoutPolicy: a missing policy is refused before anything is
// submitted (the nil publisher would panic if it were used).
func TestSubmitWithoutPolicy(t *testing.T) {
	t.Parallel()
	_, _, err := jobsubmit.Submit(context.Background(), nil, nil, jobs.Submission{Args: jobspec.InitArgs{}}, audit.Event{}, jobsubmit.Options{})
	if !errors.Is(err, jobsubmit.ErrNoPolicy) {
		t.Fatalf("err %v, want ErrNoPolicy", err)
	}
}

// TestSubmitAuditBound: an event that cannot be stored (no AUDIT stream)
// is given up, logged and not returned, once its bound ends: with
// AuditTimeout that bound is its own, not ctx's deadline (the event of a
// queued job outlives a caller that went away); without it, ctx's.
func TestSubmitAuditBound(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	pub := jobs.NewPublisher(b.JS, jobs.NewStore(b.Jobs), 3)
	ap := audit.NewPublisher(b.JS, testkit.Logger(t))
	if err := b.JS.DeleteStream(context.Background(), bus.StreamAudit); err != nil {
		t.Fatal(err)
	}
	const ctxBound, auditBound = 2 * time.Second, 4 * time.Second
	for _, tc := range []struct {
		name         string
		auditTimeout time.Duration
		detached     bool
	}{
		{"AuditTimeout: its own bound, past ctx's deadline", auditBound, true},
		{"no AuditTimeout: ctx's deadline", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), ctxBound)
			defer cancel()
			began := time.Now()
			rec, created, err := jobsubmit.Submit(ctx, pub, ap, jobs.Submission{Args: jobspec.InitArgs{}, SubmittedBy: "u"}, audit.Event{},
				jobsubmit.Options{Policy: jobsubmit.EveryCall, AuditTimeout: tc.auditTimeout})
			took := time.Since(began)
			if err != nil || !created || rec.State != jobs.Queued {
				t.Fatalf("Submit: %+v created %v err %v; a lost event must not fail the submission", rec, created, err)
			}
			if tc.detached && took < auditBound {
				t.Errorf("gave the event up after %s, before AuditTimeout %s", took, auditBound)
			}
			if !tc.detached && (took < ctxBound-100*time.Millisecond || took >= auditBound) {
				t.Errorf("gave the event up after %s, want ctx's %s", took, ctxBound)
			}
		})
	}
}
