package bus_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/testkit"
)

func TestProvisionCreatesTheContractAndIsIdempotent(t *testing.T) {
	t.Parallel()
	ns := testkit.NATS(t)
	nc := testkit.Connect(t, ns)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	log := testkit.Logger(t)
	s := bus.Settings{Replicas: 1, AuditRetention: 400 * 24 * time.Hour, JobRetention: 7 * 24 * time.Hour}
	for i := range 2 {
		if err := bus.Provision(ctx, js, s, log); err != nil {
			t.Fatalf("provision #%d: %v", i+1, err)
		}
	}
	jobsInfo := streamConfig(t, js, bus.StreamJobs)
	if jobsInfo.Retention != jetstream.WorkQueuePolicy || jobsInfo.Storage != jetstream.FileStorage || jobsInfo.Duplicates < 10*time.Minute {
		t.Fatalf("JOBS %+v", jobsInfo)
	}
	a := streamConfig(t, js, bus.StreamAudit)
	if !a.DenyDelete || !a.DenyPurge || a.MaxAge != 400*24*time.Hour || a.Retention != jetstream.LimitsPolicy {
		t.Fatalf("AUDIT %+v", a)
	}
	if d := streamConfig(t, js, bus.StreamDLQ); d.Subjects[0] != "dlq.jobs.>" {
		t.Fatalf("DLQ %+v", d)
	}
	kv, err := js.KeyValue(ctx, bus.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := kv.Status(ctx)
	if st.History() < 5 || st.TTL() != 7*24*time.Hour {
		t.Fatalf("JOB_PROGRESS history %d ttl %s", st.History(), st.TTL())
	}
	for _, b := range []string{bus.BucketLocks, bus.BucketWorkers} {
		if _, err := js.KeyValue(ctx, b); err != nil {
			t.Fatalf("bucket %s: %v", b, err)
		}
	}
}

func TestProvisionUpdatesWhatCanChange(t *testing.T) {
	t.Parallel()
	ns := testkit.NATS(t)
	js, _ := jetstream.New(testkit.Connect(t, ns))
	ctx := context.Background()
	log := testkit.Logger(t)
	if err := bus.Provision(ctx, js, bus.Settings{AuditRetention: 400 * 24 * time.Hour}, log); err != nil {
		t.Fatal(err)
	}
	if err := bus.Provision(ctx, js, bus.Settings{AuditRetention: 30 * 24 * time.Hour, JobRetention: time.Hour}, log); err != nil {
		t.Fatal(err)
	}
	if a := streamConfig(t, js, bus.StreamAudit); a.MaxAge != 30*24*time.Hour {
		t.Fatalf("AUDIT MaxAge %s, want 720h", a.MaxAge)
	}
	kv, _ := js.KeyValue(ctx, bus.BucketJobs)
	st, _ := kv.Status(ctx)
	if st.TTL() != time.Hour {
		t.Fatalf("JOB_PROGRESS ttl %s", st.TTL())
	}
}

func TestProvisionSaysWhatCannotChange(t *testing.T) {
	t.Parallel()
	ns := testkit.NATS(t)
	js, _ := jetstream.New(testkit.Connect(t, ns))
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: bus.StreamAudit, Subjects: []string{"audit.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	err := bus.Provision(ctx, js, bus.Settings{}, testkit.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "stream AUDIT: storage is Memory, configuration wants File") {
		t.Fatalf("error %v", err)
	}
	// The rest was still provisioned.
	if _, err := js.Stream(ctx, bus.StreamJobs); err != nil {
		t.Fatalf("JOBS missing after a partial failure: %v", err)
	}
}

func TestAuditStreamIsAppendOnly(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	ctx := context.Background()
	if _, err := b.JS.Publish(ctx, "audit.test.event", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	s, _ := b.JS.Stream(ctx, bus.StreamAudit)
	// The server refuses them for the stream's DenyPurge/DenyDelete, not
	// for some other reason: purge with JetStream error 10110, delete
	// with "message delete not permitted" (nats.go does not wrap that one
	// as an APIError).
	var apiErr *jetstream.APIError
	if err := s.Purge(ctx); !errors.As(err, &apiErr) || apiErr.ErrorCode != 10110 || !strings.Contains(apiErr.Description, "purge not permitted") {
		t.Fatalf("purge of AUDIT: %v, want JetStream error 10110 (stream purge not permitted)", err)
	}
	if err := s.DeleteMsg(ctx, 1); err == nil || !strings.Contains(err.Error(), "message delete not permitted") {
		t.Fatalf("delete of an AUDIT message: %v, want message delete not permitted", err)
	}
}

func streamConfig(t *testing.T, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return s.CachedInfo().Config
}

// TestProvisionAgainChangesNothing: a second Provision with the same
// settings updates no stream or bucket (the server stores an unlimited
// MaxBytes as -1, which once read as a change on every process start).
func TestProvisionAgainChangesNothing(t *testing.T) {
	t.Parallel()
	ns := testkit.NATS(t)
	js, _ := jetstream.New(testkit.Connect(t, ns))
	ctx := context.Background()
	for _, s := range []bus.Settings{{}, {Replicas: 1, AuditRetention: 400 * 24 * time.Hour, AuditMaxBytes: 1 << 30, JobRetention: 7 * 24 * time.Hour}} {
		if err := bus.Provision(ctx, js, s, testkit.Logger(t)); err != nil {
			t.Fatalf("provision %+v: %v", s, err)
		}
		var buf bytes.Buffer
		if err := bus.Provision(ctx, js, s, slog.New(slog.NewJSONHandler(&buf, nil))); err != nil {
			t.Fatalf("provision %+v again: %v", s, err)
		}
		if strings.Contains(buf.String(), "updated") {
			t.Errorf("provision %+v again changed something:\n%s", s, buf.String())
		}
	}
}
