package httpapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
)

// backupRoutes are the backup, list, verify and prune endpoints (restore is
// in restore_routes.go; GET /admin/db/backup/status/:id is a core alias).
var backupRoutes = []routeDef{
	{Route{http.MethodPost, "/admin/db/backup", auth.Operator, false,
		"queue a backup (202); body optional {components?: [system|target|chroma], note?}; 409 while a store it reads is locked"},
		(*Server).submitBackup},
	{Route{http.MethodGet, "/admin/db/backup/list", auth.Viewer, false,
		"archives, newest first: {total_backups, backups: [{filename, size_bytes, size_mb, created, components, sha256, verified, verified_at, signed, signature (valid|invalid|unsigned|unchecked), …}]}"},
		(*Server).listBackups},
	{Route{http.MethodPost, "/admin/db/backup/:name/verify", auth.Operator, false,
		"queue a verification of a listed archive (202): checksums, counts and a test restore of each part"},
		(*Server).submitBackupVerify},
	{Route{http.MethodPost, "/admin/db/backup/prune", auth.Operator, false,
		"queue retention (202): keep-last BACKUP_RETENTION_COUNT, the GFS and within rules of BACKUP_RETENTION_*, pinned archives and the newest verified one; body optional {dry_run?, pin?: [name], unpin?: [name]}"},
		(*Server).submitBackupPrune},
}

// submitBackup answers POST /admin/db/backup. The body is validated
// strictly: an unknown or repeated component, a component this deployment
// does not have (chroma without CHROMA_URL, target with
// TARGET_DATABASE_URL), an unknown field or a note that is too long or
// holds control characters is a 400. When one of the stores the backup
// would read is locked at this moment (a restore, a training, another
// backup) the answer is 409 naming the holder; a lock taken after this
// check makes the job wait for it instead.
func (s *Server) submitBackup(c echo.Context) error {
	req, err := s.parseBackup(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.readTimeout)
	defer cancel()
	read := req.Components
	if read == nil {
		read = s.enabledComponents()
	}
	if err := s.backupLocksFree(ctx, c, jobs.KindBackupCreate, read); err != nil {
		return err
	}
	msg := "backup queued"
	if req.Components != nil {
		msg = "backup of " + strings.Join(req.Components, ", ") + " queued"
	}
	return s.submit(c, req, msg)
}

// parseBackup decodes and checks (checkArgs) the optional body of POST
// /admin/db/backup, the job's jobspec.BackupCreateArgs without the
// scheduler's fields (verify_after, schedule). A bad body is a 4xx
// *APIError.
func (s *Server) parseBackup(c echo.Context) (jobspec.BackupCreateArgs, error) {
	req, err := decodeArgs[jobspec.BackupCreateArgs](c, true)
	if err != nil {
		return jobspec.BackupCreateArgs{}, err
	}
	if err := s.checkArgs(req); err != nil {
		return jobspec.BackupCreateArgs{}, err
	}
	return req, nil
}

// enabledComponents are the components a backup without a list reads.
func (s *Server) enabledComponents() []string {
	var out []string
	for _, c := range backupfmt.Components {
		if archiver.Disabled(s.cfg, c) == "" {
			out = append(out, c)
		}
	}
	return out
}

// backupLocksFree answers 409 when the LOCKS lease of one of the stores
// (backup components are also the lease names) is held, naming the holder;
// the refusal is audited as lock contention (<kind>.lock_contention).
func (s *Server) backupLocksFree(ctx context.Context, c echo.Context, kind string, stores []string) error {
	if s.bus.Locks == nil {
		return unavailable("the LOCKS bucket", errors.New("not opened"))
	}
	held, err := locks.Holders(ctx, s.bus.Locks, stores...)
	if err != nil {
		return unavailable("the LOCKS bucket", err)
	}
	var parts []string
	for _, n := range locks.Order {
		if h, ok := held[n]; ok {
			parts = append(parts, (&locks.HeldError{Name: n, Holder: h}).Error())
		}
	}
	if len(parts) == 0 {
		return nil
	}
	if cl, ok := claimsOf(c); ok {
		holders := map[string]any{}
		for n, h := range held {
			holders[n] = map[string]any{"operation": h.Operation, "job_id": h.Owner, "since": h.Since}
		}
		s.recordAudit(c, audit.Event{
			Actor: cl.Subject, Role: string(cl.Role), Action: jobs.AuditAction(kind, "lock_contention"),
			Resource: jobs.WorkerKind(kind), Outcome: audit.Denied, Detail: map[string]any{"held": holders},
		})
	}
	return apiErr(http.StatusConflict, string(jobs.CodeLockHeld), "%s; retry when it is done", strings.Join(parts, "; "))
}

// backupItem is one archive of GET /admin/db/backup/list: the Insight
// Engine's fields (filename, size_bytes, size_mb, created) extended.
type backupItem struct {
	Filename   string     `json:"filename"`
	SizeBytes  int64      `json:"size_bytes"`
	SizeMB     float64    `json:"size_mb"`
	Created    time.Time  `json:"created"`
	Components []string   `json:"components"`
	SHA256     string     `json:"sha256"`
	Verified   bool       `json:"verified"`
	VerifiedAt *time.Time `json:"verified_at"`
	// VerifyOutcome is the last verification's outcome (passed, failed),
	// empty if never verified; VerifyError its first problem.
	VerifyOutcome string            `json:"verify_outcome,omitempty"`
	VerifyError   string            `json:"verify_error,omitempty"`
	Skipped       map[string]string `json:"skipped,omitempty"`
	Note          string            `json:"note,omitempty"`
	JobID         string            `json:"job_id,omitempty"`
	// Signed: the archive has a stored signature. Signature is its status
	// with this API's keys: valid, invalid, unsigned, or unchecked (the
	// API holds no BACKUP_SIGNING_KEY); SignatureKeyID the key that signed.
	Signed         bool   `json:"signed"`
	Signature      string `json:"signature"`
	SignatureKeyID string `json:"signature_key_id,omitempty"`
	// Encryption says how the archive is encrypted at rest (age recipient
	// fingerprints, plaintext and ciphertext digests); absent: plaintext.
	Encryption *backupfmt.Encryption `json:"encryption,omitempty"`
}

// backupList is the body of GET /admin/db/backup/list.
type backupList struct {
	TotalBackups int          `json:"total_backups"`
	Backups      []backupItem `json:"backups"`
}

// listBackups answers GET /admin/db/backup/list: the complete archives of
// the backup store, newest first by the manifest's creation time (the
// name's for an archive without a stored summary).
func (s *Server) listBackups(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.readTimeout)
	defer cancel()
	st, err := s.backupStore(ctx)
	if err != nil {
		return unavailable("the backup store", err)
	}
	infos, err := st.List(ctx)
	if err != nil {
		return unavailable("the backup store", err)
	}
	sort.SliceStable(infos, func(i, j int) bool {
		if !infos[i].Created.Equal(infos[j].Created) {
			return infos[i].Created.After(infos[j].Created)
		}
		return infos[i].Name > infos[j].Name
	})
	out := backupList{TotalBackups: len(infos), Backups: make([]backupItem, 0, len(infos))}
	for _, in := range infos {
		out.Backups = append(out.Backups, s.backupItemOf(in))
	}
	return c.JSON(http.StatusOK, out)
}

// backupItemOf is the list entry of a stored archive, its signature
// checked with this API's keys (an HMAC over stored data: no read of the
// archive).
func (s *Server) backupItemOf(in backupstore.Info) backupItem {
	item := backupItem{
		Filename: in.Name, SizeBytes: in.Size, SizeMB: math.Round(float64(in.Size)/(1<<20)*100) / 100,
		Created: in.Created.UTC(), Components: in.Meta.Components, SHA256: in.SHA256,
		Verified: in.Meta.Verified(), Skipped: in.Meta.Skipped, Note: in.Meta.Note, JobID: in.Meta.JobID,
		Signed: in.Signature != "", Signature: string(s.signatureStatus(in)),
		Encryption: in.Meta.Encryption,
	}
	if sig, err := archivesig.Parse(in.Signature); err == nil {
		item.SignatureKeyID = sig.KeyID
	}
	if item.Components == nil {
		item.Components = []string{}
	}
	if v := in.Meta.Verification; v != nil {
		at := v.VerifiedAt.UTC()
		item.VerifiedAt, item.VerifyOutcome, item.VerifyError = &at, v.Outcome, v.Error
	}
	return item
}

// archiveParam returns the :name path parameter if it is exactly an
// archive name (jobspec.BackupVerifyArgs.Validate: no slashes, "..", NUL
// bytes or other suffixes), else a 400.
func archiveParam(c echo.Context) (string, error) {
	raw := c.Param("name")
	name, err := url.PathUnescape(raw)
	if err != nil {
		return "", badRequest("archive name %q is not validly escaped", truncate(raw, 100))
	}
	if err := (jobspec.BackupVerifyArgs{Name: name}).Validate(); err != nil {
		return "", badRequest("%s", err.Error())
	}
	return name, nil
}

// parseBackupVerify checks the request of POST
// /admin/db/backup/:name/verify: the :name parameter (archiveParam) and
// the optional body, absent, blank or {}. It returns the job's Args; a
// bad name or body is a 4xx *APIError. Whether the archive is listed is
// the handler's check.
func (s *Server) parseBackupVerify(c echo.Context) (jobspec.BackupVerifyArgs, error) {
	name, err := archiveParam(c)
	if err != nil {
		return jobspec.BackupVerifyArgs{}, err
	}
	if _, err := decodeArgs[jobspec.BackupVerifyArgs](c, true); err != nil {
		return jobspec.BackupVerifyArgs{}, err
	}
	args := jobspec.BackupVerifyArgs{Name: name}
	return args, s.checkArgs(args)
}

// submitBackupVerify answers POST /admin/db/backup/:name/verify: 400 for a
// malformed name, 404 for one that is not listed, else 202 with the job.
// The body is optional ({}).
func (s *Server) submitBackupVerify(c echo.Context) error {
	params, err := s.parseBackupVerify(c)
	if err != nil {
		return err
	}
	name := params.Name
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.readTimeout)
	defer cancel()
	st, err := s.backupStore(ctx)
	if err != nil {
		return unavailable("the backup store", err)
	}
	if _, err := st.Meta(ctx, name); errors.Is(err, backupstore.ErrNotFound) {
		return notFound("no backup archive named %s (GET /admin/db/backup/list lists them)", name)
	} else if err != nil {
		return unavailable("the backup store", err)
	}
	return s.submit(c, params, fmt.Sprintf("verification of %s queued", name))
}

// parseBackupPrune decodes the optional body of POST
// /admin/db/backup/prune, the job's jobspec.BackupPruneArgs; a bad body
// is a 4xx *APIError.
func (s *Server) parseBackupPrune(c echo.Context) (jobspec.BackupPruneArgs, error) {
	req, err := decodeArgs[jobspec.BackupPruneArgs](c, true)
	if err != nil {
		return jobspec.BackupPruneArgs{}, err
	}
	return req, s.checkArgs(req)
}

// submitBackupPrune answers POST /admin/db/backup/prune. An archive to
// pin or unpin that is not in the store is a 404 up front (the job would
// fail with not_found).
func (s *Server) submitBackupPrune(c echo.Context) error {
	req, err := s.parseBackupPrune(c)
	if err != nil {
		return err
	}
	if len(req.Pin)+len(req.Unpin) > 0 {
		ctx, cancel := context.WithTimeout(c.Request().Context(), s.readTimeout)
		defer cancel()
		st, err := s.backupStore(ctx)
		if err != nil {
			return unavailable("the backup store", err)
		}
		for _, name := range append(append([]string{}, req.Pin...), req.Unpin...) {
			if _, err := st.Meta(ctx, name); errors.Is(err, backupstore.ErrNotFound) {
				return notFound("no backup archive named %s to pin or unpin (GET /admin/db/backup/list lists them)", name)
			} else if err != nil {
				return unavailable("the backup store", err)
			}
		}
	}
	msg := "retention queued"
	if req.DryRun {
		msg = "retention dry run queued: the job result lists what would be deleted"
	}
	return s.submit(c, req, msg)
}

// backupStoreCache holds the Server's backup store, opened on first use
// (backupstore.FromConfig on the Server's bus): an unreachable bucket is
// a 503 of the routes that need it, not a failure to start, and is
// retried at the next request. Its zero value is ready.
type backupStoreCache struct {
	mu sync.Mutex
	st backupstore.Store
}

// backupStore returns the backup store BACKUP_STORE selects.
func (s *Server) backupStore(ctx context.Context) (backupstore.Store, error) {
	s.backups.mu.Lock()
	defer s.backups.mu.Unlock()
	if s.backups.st != nil {
		return s.backups.st, nil
	}
	st, err := backupstore.FromConfig(ctx, s.cfg, s.bus.JS)
	if err != nil {
		return nil, err
	}
	s.backups.st = st
	return st, nil
}
