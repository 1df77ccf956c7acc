package config

import (
	"net/url"
	"strings"
)

// Tracing is the OpenTelemetry trace export, read from the standard OTEL_*
// variables. Tracing is off unless an exporter is chosen (OTEL_TRACES_EXPORTER=otlp)
// or an OTLP endpoint is set; OTEL_SDK_DISABLED=true turns it off whatever
// else is set.
type Tracing struct {
	// Exporter is "none" or "otlp".
	Exporter string
	// Endpoint is the full URL spans are posted to (OTLP/HTTP): the
	// traces endpoint, or the base endpoint + /v1/traces, or, with neither
	// set, the OTLP default http://localhost:4318/v1/traces.
	Endpoint string
	// Headers are sent with each export.
	Headers map[string]string
	// ServiceName is service.name; empty: the process's own name.
	ServiceName string
	// Attributes are more resource attributes.
	Attributes map[string]string
	// Disabled is OTEL_SDK_DISABLED: no spans at all, so no trace ids
	// either (log lines of a job then carry none).
	Disabled bool
}

// Enabled reports whether spans are exported.
func (t Tracing) Enabled() bool { return t.Exporter == "otlp" }

// DefaultOTLPTracesEndpoint is where spans go when otlp is chosen without
// an endpoint (the OTLP/HTTP default).
const DefaultOTLPTracesEndpoint = "http://localhost:4318/v1/traces"

func (p *parser) tracing() Tracing {
	var t Tracing
	base := p.str("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	traces := p.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	def := "none"
	if base != "" || traces != "" {
		def = "otlp"
	}
	t.Exporter = p.oneOf("OTEL_TRACES_EXPORTER", def, "none", "otlp")
	if p.boolean("OTEL_SDK_DISABLED", false) {
		t.Exporter, t.Disabled = "none", true
	}
	switch {
	case traces != "":
		t.Endpoint = traces
	case base != "":
		t.Endpoint = strings.TrimSuffix(base, "/") + "/v1/traces"
	default:
		t.Endpoint = DefaultOTLPTracesEndpoint
	}
	for _, v := range []struct{ name, val string }{{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces}, {"OTEL_EXPORTER_OTLP_ENDPOINT", base}} {
		if v.val == "" {
			continue
		}
		if u, err := url.Parse(v.val); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.fail(v.name, v.val, "an http:// or https:// URL (OTLP/HTTP)")
		}
	}
	p.oneOf("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "http/protobuf")
	t.Headers = p.keyValues("OTEL_EXPORTER_OTLP_HEADERS")
	t.ServiceName = p.str("OTEL_SERVICE_NAME", "")
	t.Attributes = p.keyValues("OTEL_RESOURCE_ATTRIBUTES")
	return t
}

// keyValues parses "k=v,k=v" (values URL-decoded, as the OTel
// specification says); a pair without '=' is refused without echoing the
// value (it may be a credential).
func (p *parser) keyValues(name string) map[string]string {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return nil
	}
	out := map[string]string{}
	for pair := range strings.SplitSeq(v, ",") {
		k, val, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		dec, err := url.PathUnescape(strings.TrimSpace(val))
		if !ok || k == "" || err != nil {
			p.add(&VarError{Var: name, Reason: "accepted values: key=value pairs separated by commas (values URL-encoded)"})
			return nil
		}
		out[k] = dec
	}
	return out
}
