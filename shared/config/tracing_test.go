package config

import (
	"strings"
	"testing"
)

func TestTracingVariables(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		endpoint string
		headers  map[string]string
		attrs    map[string]string
		service  string
		refused  string // a variable Load must refuse
	}{
		{name: "defaults", endpoint: DefaultOTLPTracesEndpoint},
		{name: "base endpoint gets /v1/traces", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}, endpoint: "http://collector:4318/v1/traces"},
		{name: "traces endpoint wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://b/otlp/traces"}, endpoint: "https://b/otlp/traces"},
		{name: "headers, attributes and service name",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=abc,tenant=t%201", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod", "OTEL_SERVICE_NAME": "api-eu"},
			endpoint: DefaultOTLPTracesEndpoint, headers: map[string]string{"x-api-key": "abc", "tenant": "t 1"},
			attrs: map[string]string{"deployment.environment": "prod"}, service: "api-eu"},
		{name: "not a URL", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, refused: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "grpc is not built in", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, refused: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, refused: "OTEL_TRACES_EXPORTER"},
		{name: "header without a value", env: map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "s3cret-token"}, refused: "OTEL_EXPORTER_OTLP_HEADERS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.env))
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("err = %v, want one naming %s", err, tc.refused)
				}
				if strings.Contains(err.Error(), "s3cret-token") {
					t.Fatalf("the error shows the headers' value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tr := c.Tracing
			if tr.Endpoint != tc.endpoint || tr.ServiceName != tc.service || !sameMap(tr.Headers, tc.headers) || !sameMap(tr.Attributes, tc.attrs) {
				t.Fatalf("tracing = %+v", tr)
			}
		})
	}
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
