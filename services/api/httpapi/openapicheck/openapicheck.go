// Package openapicheck checks real HTTP exchanges with the insightops API
// against its served OpenAPI description (GET /openapi.json), with
// kin-openapi: the document must be valid OpenAPI 3.0, a request's
// parameters and JSON body must match the operation's documentation and a
// response's status must be documented and its body match the schema
// documented for it. The API's tests and the all-in-one's end-to-end tests
// use it; the binaries do not.
package openapicheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Checker validates exchanges against one loaded description.
type Checker struct {
	doc    *openapi3.T
	router routers.Router
}

// Load parses and validates the description spec (the body of GET
// /openapi.json).
func Load(ctx context.Context, spec []byte) (*Checker, error) {
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load openapi description: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("invalid openapi description: %w", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route openapi description: %w", err)
	}
	return &Checker{doc: doc, router: router}, nil
}

// Fetch loads the description base serves at /openapi.json.
func Fetch(ctx context.Context, client *http.Client, base string) (*Checker, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/openapi.json", http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("fetch openapi description: %w", err)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch openapi description: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch openapi description: status %d: %w", res.StatusCode, err)
	}
	return Load(ctx, body)
}

// Doc is the loaded description.
func (c *Checker) Doc() *openapi3.T { return c.doc }

// Exchange is one request sent and the response received.
type Exchange struct {
	Method string
	// Target is the path with its query, e.g. "/admin/db/tasks?limit=5".
	Target string
	// Header is the request's headers (Authorization, Content-Type, …).
	Header http.Header
	// Body is the request body (nil for none).
	Body []byte

	Status     int
	RespHeader http.Header
	RespBody   []byte
}

// Check validates x. The request is checked against the documented
// parameters and request body unless the API refused it as bad input
// (400, 404, 409, 413, 415, 422, 429): such requests are sent on purpose
// by tests and need not match. The response is always checked: its status
// must be documented and its body match the schema documented for it.
func (c *Checker) Check(ctx context.Context, x Exchange) error {
	hr := httptest.NewRequestWithContext(ctx, x.Method, x.Target, bytes.NewReader(x.Body))
	for k, vs := range x.Header {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	route, params, err := c.router.FindRoute(hr)
	if err != nil {
		return fmt.Errorf("%s %s: no documented operation: %w", x.Method, x.Target, err)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            true,
	}
	in := &openapi3filter.RequestValidationInput{Request: hr, PathParams: params, Route: route, Options: opts}
	var errs []error
	if x.Status < 400 || x.Status == http.StatusUnauthorized || x.Status == http.StatusForbidden || x.Status >= 500 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			errs = append(errs, fmt.Errorf("request: %w", err))
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: x.Status, Header: x.RespHeader, Options: opts}
	out.SetBodyBytes(x.RespBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, fmt.Errorf("response %d: %w", x.Status, err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s %s: %w", x.Method, x.Target, err)
	}
	return nil
}

// CheckValue validates a decoded JSON value against the component schema
// name (e.g. a job's result against "BackupCreateResult").
func (c *Checker) CheckValue(name string, v any) error {
	ref, ok := c.doc.Components.Schemas[name]
	if !ok || ref.Value == nil {
		return fmt.Errorf("no component schema %s", name)
	}
	if err := ref.Value.VisitJSON(v, openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
