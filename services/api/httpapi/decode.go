package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// decodeJSON decodes the request body into v strictly: Content-Type
// application/json, exactly one JSON value, no unknown fields, and each
// field of its declared type. A failure is a 400 (415 for another content
// type, 413 past MaxBodyBytes) whose message names the offending field or
// offset. With allowEmpty an absent or blank body is accepted and leaves v
// unchanged.
func decodeJSON(c echo.Context, v any, allowEmpty bool) error {
	req := c.Request()
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return apiErr(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body larger than %d bytes", MaxBodyBytes)
			}
			return badRequest("could not read the request body")
		}
		body = b
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "a JSON object body is required")
	}
	ct := req.Header.Get(echo.HeaderContentType)
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != echo.MIMEApplicationJSON {
		return apiErr(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type must be application/json (got %q)", truncate(ct, 100))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "%s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "unexpected data after the JSON value: the body must be exactly one JSON object")
	}
	return nil
}

// describeJSONError turns a decoding error into a message for the client,
// naming the field when there is one.
func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends in the middle of a value"
	case errors.As(err, &te):
		if te.Field == "" {
			return fmt.Sprintf("the body must be a JSON object, not a JSON %s", te.Value)
		}
		return fmt.Sprintf("field %q must be %s, not a JSON %s", te.Field, jsonTypeName(te.Type.Kind().String()), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "invalid JSON body"
}

func jsonTypeName(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	}
	return "of type " + goKind
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
