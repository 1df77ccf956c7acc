package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
)

// restoreRoutes are the restore endpoints.
var restoreRoutes = []routeDef{
	{Route{http.MethodPost, "/admin/db/backup/restore/:name", auth.Admin, true,
		"queue a restore of a listed archive (202), with a pre-restore safety backup; ?confirm=true; body optional {components?, skip_safety_backup?}; 409 while a store is locked"},
		(*Server).submitRestore},
}

// submitRestore answers POST /admin/db/backup/restore/:name?confirm=true.
// The route table makes it admin-only and confirmed (400 without
// confirm=true). Then, before anything is queued:
//
//   - the name must be exactly an archive name (archiveParam,
//     backupfmt.ParseArchiveName: no slashes, "..", absolute paths or NUL
//     bytes), else 400;
//   - it must be listed in the backup store, else 404;
//   - components, when given, must be known and included in the archive
//     (as far as the archive's stored summary tells), else 400;
//   - no store it would touch may be locked (LOCKS) at this moment, else
//     409 naming the holder (backupLocksFree). A lock taken after this
//     check makes the job wait for it instead (see restoreworker).
//
// Nothing is read from or written to the archive here: the worker
// verifies it before it changes anything.
func (s *Server) submitRestore(c echo.Context) error {
	params, err := s.parseRestore(c)
	if err != nil {
		return err
	}
	name, comps := params.Archive, params.Components
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.readTimeout)
	defer cancel()
	st, err := s.backupStore(ctx)
	if err != nil {
		return unavailable("the backup store", err)
	}
	meta, err := st.Meta(ctx, name)
	switch {
	case errors.Is(err, backupstore.ErrNotFound):
		return notFound("no backup archive named %s (GET /admin/db/backup/list lists them)", name)
	case err != nil:
		return unavailable("the backup store", err)
	}
	touched := comps
	if len(meta.Components) > 0 {
		for _, comp := range comps {
			if !slices.Contains(meta.Components, comp) {
				reason := meta.Skipped[comp]
				if reason == "" {
					reason = "not in the archive"
				}
				return badRequest("component %s cannot be restored from %s: %s (it includes %s)", comp, name, reason, strings.Join(meta.Components, ", "))
			}
		}
		if len(comps) == 0 {
			touched = meta.Components
		}
	} else if len(comps) == 0 {
		touched = backupfmt.Components // summary unknown: assume every store
	}
	if err := s.backupLocksFree(ctx, c, jobs.KindRestore, touched); err != nil {
		return err
	}
	msg := fmt.Sprintf("restore of %s queued (%s)", name, strings.Join(touched, ", "))
	if params.SkipSafetyBackup {
		msg += " without a safety backup"
	} else {
		msg += " with a safety backup first"
	}
	return s.submit(c, params, msg)
}

// parseRestore checks the request of POST /admin/db/backup/restore/:name:
// the :name parameter (archiveParam) and the optional body, the job's
// jobspec.RestoreArgs without the archive (it is the path's), checked
// (checkArgs) and normalised (RestoreArgs.Normalized: components
// de-duplicated, in archive order; nil for every component of the
// archive). It returns the job's Args; a bad name or body is a 4xx
// *APIError. Whether the archive is listed and holds the components is
// the handler's check, against the backup store.
func (s *Server) parseRestore(c echo.Context) (jobspec.RestoreArgs, error) {
	name, err := archiveParam(c)
	if err != nil {
		return jobspec.RestoreArgs{}, err
	}
	args, err := decodeArgs[jobspec.RestoreArgs](c, true)
	if err != nil {
		return jobspec.RestoreArgs{}, err
	}
	args.Archive = name
	if err := s.checkArgs(args); err != nil {
		return jobspec.RestoreArgs{}, err
	}
	return args.Normalized(), nil
}
