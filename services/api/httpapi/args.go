package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
)

// The request bodies of the submit routes are the jobs' Args (package
// jobspec), decoded strictly by decodeArgs and checked by checkArgs: the
// API keeps no copy of a job's params, limits or messages.

// decodeArgs decodes the request body (optional when allowEmpty) into the
// Args A as decodeJSON does, refusing as an unknown field any field of
// A's kind that a body may not set (bodyExcluded: from the path, or only
// by the scheduler).
func decodeArgs[A jobs.Args](c echo.Context, allowEmpty bool) (A, error) {
	var a A
	var fields map[string]json.RawMessage
	if err := decodeJSON(c, &fields, allowEmpty); err != nil {
		return a, err
	}
	for _, f := range bodyExcluded[a.Kind()] {
		if _, ok := fields[f]; ok {
			return a, apiErr(http.StatusBadRequest, CodeInvalidJSON, "unknown field %q", f)
		}
	}
	if fields == nil {
		return a, nil
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return a, badRequest("invalid JSON body")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return a, apiErr(http.StatusBadRequest, CodeInvalidJSON, "%s", describeJSONError(err))
	}
	return a, nil
}

// checkArgs is every check of a job's Args before it is queued that needs
// no store: the Args' own Validate (a jobs.Invalid error, answered 400
// with its message) and what this deployment can do (a backup of chroma
// without CHROMA_URL, of the target with an external
// TARGET_DATABASE_URL). Whether an archive is listed, a store locked or
// the vector store reachable is the handler's check.
func (s *Server) checkArgs(a jobs.Args) error {
	if err := a.Validate(); err != nil {
		return badRequest("%s", err.Error())
	}
	if b, ok := a.(jobspec.BackupCreateArgs); ok {
		for _, c := range b.Components {
			if reason := archiver.Disabled(s.cfg, c); reason != "" {
				return badRequest("component %s cannot be backed up: %s", c, reason)
			}
		}
	}
	return nil
}
