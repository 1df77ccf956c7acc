// Package tracing follows a job across the bus with OpenTelemetry: the API
// request's span, the trace context carried in the JetStream message
// headers of the job's command (W3C traceparent), and the worker's job
// span with a span per step and the children its handler starts (dump,
// compress, store put, Chroma batches). Log lines of a job carry the
// trace's id (Logger).
//
// Setup installs the SDK's tracer provider, with an OTLP/HTTP exporter when
// the OTEL_* configuration asks for one (config.Tracing). Without one,
// spans are still made and dropped when they end: trace ids reach the log
// lines and the message headers, so a job's lines can be found from the
// API's request line with no collector at all. OTEL_SDK_DISABLED=true
// keeps the global no-op provider: no spans, no ids. Spans are made with
// the global provider, so a test may install its own (the SDK's tracetest
// recorder) with otel.SetTracerProvider.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/insightops/insightops/shared/config"
)

// Name is the instrumentation scope of insightops's spans.
const Name = "github.com/insightops/insightops"

// propagator carries the span context (and baggage) in W3C headers,
// whatever the global propagator is.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Setup installs this process's tracer provider (see NewProvider) as the
// global one. shutdown flushes and stops it (a no-op when the SDK is
// disabled).
//
// Without export the provider holds nothing to flush and is installed only
// when no SDK provider is there yet: one installed before (a test's
// recorder, an earlier Setup in the same process) is kept, and shutdown
// does nothing.
func Setup(ctx context.Context, cfg config.Tracing, service string) (shutdown func(context.Context) error, err error) {
	none := func(context.Context) error { return nil }
	if !cfg.Enabled() {
		if _, installed := otel.GetTracerProvider().(*sdktrace.TracerProvider); installed {
			return none, nil
		}
	}
	tp, err := NewProvider(ctx, cfg, service)
	if err != nil || tp == nil {
		return none, err
	}
	otel.SetTracerProvider(tp)
	if !cfg.Enabled() {
		return none, nil
	}
	return tp.Shutdown, nil
}

// NewProvider returns the tracer provider cfg asks for: nil when the SDK
// is disabled (OTEL_SDK_DISABLED); else the SDK's, with resource
// service.name (cfg's, else service) and cfg's attributes, whose spans are
// batched to the OTLP/HTTP endpoint when export is on, and otherwise only
// made (ids for logs and propagation) and dropped.
func NewProvider(ctx context.Context, cfg config.Tracing, service string) (*sdktrace.TracerProvider, error) {
	if cfg.Disabled {
		return nil, nil
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(Resource(cfg, service))}
	if cfg.Enabled() {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.Endpoint), otlptracehttp.WithHeaders(cfg.Headers))
		if err != nil {
			return nil, fmt.Errorf("tracing: otlp exporter %s: %w", cfg.Endpoint, err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

// Resource is the resource of this process's spans: service.name (cfg's,
// else service) and cfg's attributes.
func Resource(cfg config.Tracing, service string) *resource.Resource {
	if cfg.ServiceName != "" {
		service = cfg.ServiceName
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", service)}
	for k, v := range cfg.Attributes {
		if k != "service.name" {
			attrs = append(attrs, attribute.String(k, v))
		}
	}
	return resource.NewSchemaless(attrs...)
}

func tracer() trace.Tracer { return otel.Tracer(Name) }

// Start starts a span named name, a child of ctx's span.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return tracer().Start(ctx, name, trace.WithAttributes(attrs...))
}

// String is a string attribute of a span.
func String(key, value string) attribute.KeyValue { return attribute.String(key, value) }

// Int is an integer attribute of a span.
func Int(key string, value int) attribute.KeyValue { return attribute.Int(key, value) }

// End ends span, marking it failed with err when err is not nil.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// TraceID is the id of ctx's trace, "" when ctx has none.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}

// Logger returns log with trace_id (and span_id) of ctx's span, or log
// itself when ctx has none.
func Logger(ctx context.Context, log *slog.Logger) *slog.Logger {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return log
	}
	return log.With("trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
}

// headerCarrier is a nats.Header as a propagation carrier (exact keys:
// NATS headers are case-sensitive).
type headerCarrier nats.Header

func (h headerCarrier) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h headerCarrier) Set(key, value string) { h[key] = []string{value} }

func (h headerCarrier) Keys() []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	return out
}

// Inject writes ctx's span context into the headers of a message
// (traceparent, and tracestate/baggage when present).
func Inject(ctx context.Context, h nats.Header) { propagator.Inject(ctx, headerCarrier(h)) }

// Extract returns ctx with the remote span context h carries (ctx itself
// when h carries none).
func Extract(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return propagator.Extract(ctx, headerCarrier(h))
}

// StartPublish starts the producer span of publishing a job's command;
// Inject its context into the message.
func StartPublish(ctx context.Context, kind, jobID string) (context.Context, trace.Span) {
	return tracer().Start(ctx, "jobs publish", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("job.kind", kind), attribute.String("job.id", jobID)))
}

// StartJob starts the consumer span of running one delivery of a job, a
// child of the trace its command's headers carry.
func StartJob(ctx context.Context, h nats.Header, kind, jobID string, attempt int) (context.Context, trace.Span) {
	return tracer().Start(Extract(ctx, h), "job "+kind, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("job.kind", kind), attribute.String("job.id", jobID), attribute.Int("job.attempt", attempt)))
}

// JobState records the state a job ended in on ctx's (job) span; a failed
// job's span is marked failed with err.
func JobState(ctx context.Context, state string, err error) {
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.String("job.state", state))
	if state == "failed" && err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}

// StartHTTP starts the server span of an HTTP request, a child of the
// trace its traceparent header names, if any. Name it with EndHTTP once
// the route is known.
func StartHTTP(r *http.Request) (context.Context, trace.Span) {
	ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return tracer().Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
}

// EndHTTP names the request's span "<method> <route>", records the
// status (a 5xx marks it failed) and ends it.
func EndHTTP(span trace.Span, method, route string, status int) {
	if route != "" {
		span.SetName(method + " " + route)
		span.SetAttributes(attribute.String("http.route", route))
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// Steps keeps one span per step of a job, each a child of the job's span:
// a step's span runs from the Step call that names it to the next step's
// (or End). Progress of the same step — the text before its first ':',
// as in "writing sql: 10/50" then "writing sql: 20/50" — updates the
// span's attributes instead of starting another. Not safe for concurrent
// use (the job's Step serialises its calls).
type Steps struct {
	span trace.Span
	key  string
}

// Step records that step is now running at progress percent.
func (s *Steps) Step(ctx context.Context, step string, progress int) {
	key, _, _ := strings.Cut(step, ":")
	if s.span == nil || key != s.key {
		s.End()
		_, s.span = tracer().Start(ctx, "step "+key)
		s.key = key
	}
	s.span.SetAttributes(attribute.String("job.step", step), attribute.Int("job.progress", progress))
}

// End ends the running step's span, if any.
func (s *Steps) End() {
	if s.span != nil {
		s.span.End()
		s.span = nil
	}
}
