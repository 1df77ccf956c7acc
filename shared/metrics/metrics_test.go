package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/metrics"
	"github.com/insightops/insightops/shared/presence"
	"github.com/insightops/insightops/shared/testkit"
)

// gather returns the value of every sample of family name, by its labels
// rendered as "k=v,k=v".
func gather(t *testing.T, name string) map[string]float64 {
	t.Helper()
	fams, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out[strings.Join(labels, ",")] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return 0
}

func TestDeclaredKindsExportZeroSeriesAndRunningJobs(t *testing.T) {
	metrics.DeclareJobKinds("test.declared")
	if got := testutil.ToFloat64(metrics.JobsFinished.WithLabelValues("test.declared", "failed")); got != 0 {
		t.Fatalf("declared failed counter = %v, want 0", got)
	}
	if got := gather(t, "insightops_jobs_running")["kind=test.declared"]; got != 0 {
		t.Fatalf("running before any job = %v, want 0", got)
	}
	beat, done := metrics.JobRunning("job-1", "test.declared")
	time.Sleep(1100 * time.Millisecond)
	if got := gather(t, "insightops_jobs_running")["kind=test.declared"]; got != 1 {
		t.Fatalf("running = %v, want 1", got)
	}
	if age := gather(t, "insightops_job_heartbeat_age_seconds")["kind=test.declared"]; age < 1 {
		t.Fatalf("heartbeat age without a heartbeat = %v, want ≥ 1s", age)
	}
	beat()
	if age := gather(t, "insightops_job_heartbeat_age_seconds")["kind=test.declared"]; age >= 1 {
		t.Fatalf("heartbeat age after a heartbeat = %v, want < 1s", age)
	}
	done()
	if got := gather(t, "insightops_jobs_running")["kind=test.declared"]; got != 0 {
		t.Fatalf("running after done = %v, want 0", got)
	}
}

func TestBusMetricsCountLiveWorkersAndStreamUsage(t *testing.T) {
	b, _ := testkit.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A stream with a byte limit, and one bounded by nothing.
	if _, err := b.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "LIMITED", Subjects: []string{"limited.>"}, MaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.JS.Publish(ctx, "limited.x", make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	go presence.NewAnnouncer(b.Workers, "backup", "b-1", 1, time.Second, testkit.Logger(t)).Run(pctx)
	if err := metrics.RegisterBus(b.JS, b.Workers, []string{"backup", "restore"}, []string{"LIMITED", bus.StreamAudit}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for gather(t, "insightops_workers_live")["kind=backup"] != 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	live := gather(t, "insightops_workers_live")
	if live["kind=backup"] != 1 || live["kind=restore"] != 0 {
		t.Fatalf("workers live = %v, want backup 1 and restore 0", live)
	}
	if _, ok := live["kind=restore"]; !ok {
		t.Fatalf("a kind without workers has no sample: %v", live)
	}
	used, limit := gather(t, "insightops_stream_bytes"), gather(t, "insightops_stream_limit_bytes")
	if used["stream=LIMITED"] < 1000 || limit["stream=LIMITED"] != 1<<20 {
		t.Fatalf("LIMITED: bytes %v limit %v, want ≥ 1000 of 1 MiB", used["stream=LIMITED"], limit["stream=LIMITED"])
	}
	// AUDIT has its own MaxBytes (AUDIT_MAX_BYTES), whatever the account's limit.
	if limit["stream=AUDIT"] != float64(bus.DefaultAuditMaxBytes) {
		t.Fatalf("AUDIT limit = %v, want its MaxBytes %d", limit["stream=AUDIT"], bus.DefaultAuditMaxBytes)
	}
	ratio := gather(t, "insightops_stream_usage_ratio")
	if want := used["stream=LIMITED"] / (1 << 20); ratio["stream=LIMITED"] != want {
		t.Fatalf("LIMITED usage ratio = %v, want %v", ratio["stream=LIMITED"], want)
	}
	if r, ok := ratio["stream=AUDIT"]; !ok || r != used["stream=AUDIT"]/float64(bus.DefaultAuditMaxBytes) {
		t.Fatalf("AUDIT usage ratio = %v (present %v)", r, ok)
	}
}

func TestQueueDepthCoversEveryRegisteredStream(t *testing.T) {
	b, _ := testkit.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.JS.CreateOrUpdateConsumer(ctx, bus.StreamAudit, jetstream.ConsumerConfig{Durable: "audit-sink", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.JS.CreateOrUpdateConsumer(ctx, bus.StreamJobs, jetstream.ConsumerConfig{Durable: "backup", FilterSubject: "jobs.backup.>", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := b.JS.PublishMsg(ctx, &nats.Msg{Subject: "audit.test", Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.JS.Publish(ctx, "jobs.backup.create", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := metrics.RegisterQueueDepth(b.JS, bus.StreamJobs, []string{"backup"}); err != nil {
		t.Fatal(err)
	}
	if err := metrics.RegisterQueueDepth(b.JS, bus.StreamAudit, []string{"audit-sink"}); err != nil {
		t.Fatal(err)
	}
	got := gather(t, "insightops_consumer_pending_messages")
	if got["consumer=audit-sink,stream=AUDIT"] != 3 || got["consumer=backup,stream=JOBS"] != 1 {
		t.Fatalf("pending = %v, want audit-sink 3 and backup 1", got)
	}
}
