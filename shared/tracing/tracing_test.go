package tracing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/tracing"
	"github.com/insightops/insightops/shared/tracing/tracingtest"
)

func TestJobSpanContinuesThePublishersTraceThroughTheHeaders(t *testing.T) {
	rec := tracingtest.Record(t)
	ctx, pub := tracing.StartPublish(context.Background(), "backup.create", "job-1")
	h := nats.Header{}
	tracing.Inject(ctx, h)
	pub.End()
	if h.Get("traceparent") == "" {
		t.Fatalf("no traceparent header: %v", h)
	}
	// The worker side: a fresh context, only the headers.
	jctx, job := tracing.StartJob(context.Background(), h, "backup.create", "job-1", 1)
	var steps tracing.Steps
	steps.Step(jctx, "dumping the system database", 10)
	steps.Step(jctx, "dumping the system database: 3.0 MiB", 20) // progress of the same step
	steps.Step(jctx, "writing the manifest", 96)
	steps.End()
	tracing.JobState(jctx, "succeeded", nil)
	job.End()

	spans := rec.Ended()
	if len(spans) != 4 {
		t.Fatalf("%d spans, want publish, job and two steps", len(spans))
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = s
		if s.SpanContext().TraceID() != pub.SpanContext().TraceID() {
			t.Errorf("span %s in trace %s, want the publisher's %s", s.Name(), s.SpanContext().TraceID(), pub.SpanContext().TraceID())
		}
	}
	if got := byName["job backup.create"].Parent().SpanID(); got != pub.SpanContext().SpanID() {
		t.Errorf("job span's parent %s, want the publish span %s", got, pub.SpanContext().SpanID())
	}
	for _, name := range []string{"step dumping the system database", "step writing the manifest"} {
		s, ok := byName[name]
		if !ok || s.Parent().SpanID() != job.SpanContext().SpanID() {
			t.Errorf("step span %q missing or not a child of the job span", name)
		}
	}
	if tracing.TraceID(jctx) != pub.SpanContext().TraceID().String() {
		t.Errorf("TraceID(job ctx) = %q", tracing.TraceID(jctx))
	}
}

func TestExtractWithoutHeadersStartsANewTrace(t *testing.T) {
	tracingtest.Record(t)
	ctx, span := tracing.StartJob(context.Background(), nil, "init.run", "job-2", 1)
	defer span.End()
	if !span.SpanContext().IsValid() || tracing.TraceID(ctx) == "" {
		t.Fatal("a job without trace headers has no span of its own")
	}
	if tracing.TraceID(context.Background()) != "" {
		t.Fatal("a context without a span has a trace id")
	}
}

// TestSetupExportsOverOTLPHTTPToTheConfiguredEndpoint starts the real
// OTLP/HTTP exporter against a local HTTP server and checks a span
// arrives at <endpoint>/v1/traces with the configured headers.
func TestSetupExportsOverOTLPHTTPToTheConfiguredEndpoint(t *testing.T) {
	var (
		mu      sync.Mutex
		path    string
		apiKey  string
		bodyLen int
	)
	got := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		path, apiKey, bodyLen = r.URL.Path, r.Header.Get("x-api-key"), len(b)
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
		select {
		case got <- struct{}{}:
		default:
		}
	}))
	defer srv.Close()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=s3cret"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Tracing.Enabled() {
		t.Fatal("an OTLP endpoint does not enable tracing")
	}
	prev := otel.GetTracerProvider()
	defer otel.SetTracerProvider(prev)
	shutdown, err := tracing.Setup(context.Background(), cfg.Tracing, "insightops-test")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tracing.Start(context.Background(), "exported")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil { // flushes the batch
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatal("no export reached the endpoint")
	}
	mu.Lock()
	defer mu.Unlock()
	if path != "/v1/traces" || apiKey != "s3cret" || bodyLen == 0 {
		t.Fatalf("export to %s with x-api-key %q and %d bytes, want /v1/traces, s3cret, a body", path, apiKey, bodyLen)
	}
}

func TestTracingIsOffByDefault(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		on   bool
	}{
		{"nothing set", nil, false},
		{"endpoint set", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{"otlp chosen without endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{"endpoint set, exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load(func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Tracing.Enabled() != tc.on {
				t.Fatalf("enabled = %v, want %v", cfg.Tracing.Enabled(), tc.on)
			}
		})
	}
}

// Without an exporter the provider still makes spans with trace ids (for
// log lines and the message headers) and exports nothing; with the SDK
// disabled there is no provider, so no ids.
func TestTraceIDsWithoutExportUnlessTheSDKIsDisabled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		env    map[string]string
		wantID bool
	}{
		{"nothing set", nil, true},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, true},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load(func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			tp, err := tracing.NewProvider(context.Background(), cfg.Tracing, "test")
			if err != nil {
				t.Fatal(err)
			}
			if (tp != nil) != tc.wantID {
				t.Fatalf("provider = %v, want one: %v", tp, tc.wantID)
			}
			if tp == nil {
				return
			}
			defer func() { _ = tp.Shutdown(context.Background()) }()
			ctx, span := tp.Tracer(tracing.Name).Start(context.Background(), "job")
			defer span.End()
			if id := tracing.TraceID(ctx); len(id) != 32 || id == strings.Repeat("0", 32) {
				t.Fatalf("trace id %q, want 32 hex digits", id)
			}
		})
	}
}
