package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/config"
)

// Archive route paths, headers and codes.
const (
	// ArchiveImportPath is the import route; its body limit is
	// BACKUP_IMPORT_MAX_MB instead of MaxBodyBytes.
	ArchiveImportPath = "/admin/db/backup/import"
	// HeaderArchiveSHA256 carries an archive's stored SHA-256 (hex).
	HeaderArchiveSHA256 = "X-Archive-SHA256"
	// HeaderArchiveSignature carries an archive's signature (archivesig),
	// on a download; on an import, the signature it had where it came
	// from (audited as the source signature status).
	HeaderArchiveSignature = "X-Archive-Signature"
	// ImportTimeout bounds an import: reading the body, checking the
	// archive and storing it.
	ImportTimeout = time.Hour

	CodeArchiveInvalid    = "archive_invalid"
	CodeArchiveExists     = "archive_exists"
	CodeBackupStoreFull   = "backup_store_full"
	CodeSigningKeyMissing = "signing_key_missing"
)

// archiveRoutes move archives in and out of the deployment.
var archiveRoutes = []routeDef{
	{Route{http.MethodGet, "/admin/db/backup/:name/download", auth.Admin, false,
		"the archive's bytes unchanged (application/octet-stream) with X-Archive-SHA256 and, when signed, X-Archive-Signature; audited backup.download"},
		(*Server).downloadBackup},
	{Route{http.MethodPost, ArchiveImportPath, auth.Admin, true,
		"import an archive from elsewhere: ?confirm=true, body the raw archive (application/octet-stream, at most BACKUP_IMPORT_MAX_MB), optional ?name=; checked fully before it is listed, then stored signed with this deployment's key (201 with its list entry); 422 archive_invalid, 409 archive_exists, 413 too large; audited backup.import"},
		(*Server).importBackup},
}

// downloadBackup answers GET /admin/db/backup/:name/download: the
// archive's stored bytes, streamed unchanged. An invalid or unknown name
// is 404. The download is audited (backup.download) before the bytes go
// out.
func (s *Server) downloadBackup(c echo.Context) error {
	name, err := url.PathUnescape(c.Param("name"))
	if err != nil {
		return notFound("no backup archive named %q", truncate(c.Param("name"), 100))
	}
	if _, err := backupfmt.ParseArchiveName(name); err != nil {
		return notFound("no backup archive named %q (GET /admin/db/backup/list lists them)", truncate(name, 100))
	}
	ctx := c.Request().Context()
	octx, cancel := context.WithTimeout(ctx, s.readTimeout)
	st, err := s.backupStore(octx)
	cancel()
	if err != nil {
		return unavailable("the backup store", err)
	}
	rc, info, err := st.Open(ctx, name)
	if errors.Is(err, backupstore.ErrNotFound) {
		return notFound("no backup archive named %s (GET /admin/db/backup/list lists them)", name)
	}
	if err != nil {
		return unavailable("the backup store", err)
	}
	defer rc.Close()
	if cl, ok := claimsOf(c); ok {
		s.recordAudit(c, audit.Event{
			Actor: cl.Subject, Role: string(cl.Role), Action: "backup.download", Resource: "backup", Outcome: audit.Success,
			Detail: map[string]any{"archive": name, "size": info.Size, "sha256": info.SHA256, "signature": string(s.signatureStatus(info))},
		})
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEOctetStream)
	h.Set(echo.HeaderContentLength, strconv.FormatInt(info.Size, 10))
	// The name passed ParseArchiveName: letters, digits, '-', '.' only.
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	if info.SHA256 != "" {
		h.Set(HeaderArchiveSHA256, info.SHA256)
	}
	if info.Signature != "" {
		h.Set(HeaderArchiveSignature, info.Signature)
	}
	c.Response().WriteHeader(http.StatusOK)
	if n, err := io.Copy(c.Response(), rc); err != nil {
		// The status is sent: the client sees a short body.
		s.log.Warn("archive download interrupted", "archive", name, "bytes", n, "err", err, "request_id", requestID(c))
	}
	return nil
}

// importBackup answers POST /admin/db/backup/import?confirm=true (admin,
// confirmed by the route table). The body is streamed into a private
// temporary file under DATA_DIR/scratch (at most BACKUP_IMPORT_MAX_MB,
// else 413), then checked whole (backupfmt.Verify: structure, manifest,
// every part's size and SHA-256, the name against the manifest, JSONL
// parsing) before anything is stored: an invalid archive is 422
// archive_invalid and nothing is listed. It is then stored from that file
// under ?name (default: the name its manifest implies, as its backup
// named it), signed with this deployment's key in the same commit, and
// answered 201 with its list entry. Every outcome past the role check is
// audited (backup.import).
func (s *Server) importBackup(c echo.Context) error {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != echo.MIMEOctetStream {
			return apiErr(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type must be application/octet-stream (got %q)", truncate(ct, 100))
		}
	}
	name := c.QueryParam("name")
	if name != "" {
		n, err := backupfmt.ParseArchiveName(name)
		if err != nil {
			return badRequest("name %q is not a valid archive name: %s", truncate(name, 100), err.Error())
		}
		if n.Encrypted {
			return badRequest("name %q is an encrypted archive's: imports take plaintext archives only (decrypt it with age -d first, and name it without %s)", truncate(name, 100), backupfmt.EncryptedExt)
		}
	}
	if s.keys.KeyID() == "" {
		return apiErr(http.StatusServiceUnavailable, CodeSigningKeyMissing, "this API has no BACKUP_SIGNING_KEY: imported archives could not be signed")
	}
	ctx, cancel := context.WithTimeout(req.Context(), ImportTimeout)
	defer cancel()
	// The server's ReadTimeout (30 s) is for ordinary requests; an
	// archive takes longer to arrive.
	_ = http.NewResponseController(c.Response().Writer).SetReadDeadline(time.Now().Add(ImportTimeout))

	st, err := s.backupStore(ctx)
	if err != nil {
		return unavailable("the backup store", err)
	}
	if name != "" {
		if _, err := st.Meta(ctx, name); err == nil {
			return s.importRefused(c, name, apiErr(http.StatusConflict, CodeArchiveExists, "an archive named %s already exists", name))
		}
	}
	sp, err := s.spoolBody(req.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return s.importRefused(c, name, apiErr(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "the archive is larger than BACKUP_IMPORT_MAX_MB (%d MiB)", s.cfg.BackupImportMaxMB))
		}
		return fmt.Errorf("import: receive the archive: %w", err)
	}
	defer sp.remove()

	rep, err := backupfmt.Verify(ctx, sp.f, backupfmt.VerifyOptions{
		ReadOptions: backupfmt.ReadOptions{Name: name},
		Checkers:    backupfmt.DefaultCheckers(),
	})
	if err == nil && rep.ArchiveSHA256 != sp.sha256 {
		err = fmt.Errorf("read back with SHA-256 %s, received %s", rep.ArchiveSHA256, sp.sha256)
	}
	if err != nil {
		if ctx.Err() != nil {
			return unavailable("the import", ctx.Err())
		}
		msg := "the archive is not valid, nothing was stored: " + truncate(err.Error(), 500)
		if isAgeFile(sp.f) {
			msg = "the body is an age-encrypted file: imports take plaintext archives only (decrypt it with age -d first); nothing was stored"
		}
		return s.importRefused(c, name, &APIError{Status: http.StatusUnprocessableEntity, Code: CodeArchiveInvalid, Message: msg, Err: err})
	}
	if name == "" {
		name = backupfmt.ArchiveName(rep.Manifest.CreatedAt, rep.Manifest.JobID, rep.Compression)
	}
	// The signature it had where it came from, checked with this
	// deployment's keys: "invalid" for another deployment's key.
	srcStatus := s.keys.StatusOf(name, sp.sha256, req.Header.Get(HeaderArchiveSignature))
	if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("import: rewind %s: %w", sp.f.Name(), err)
	}
	info, err := st.Put(ctx, name, sp.f, backupstore.WithSeal(archiver.Seal(s.keys, name, rep.ArchiveSHA256, rep.ManifestSHA256)))
	switch {
	case errors.Is(err, backupstore.ErrExists):
		return s.importRefused(c, name, apiErr(http.StatusConflict, CodeArchiveExists, "an archive named %s already exists", name))
	case errors.Is(err, backupstore.ErrNoSpace):
		return s.importRefused(c, name, &APIError{Status: http.StatusInsufficientStorage, Code: CodeBackupStoreFull, Message: "the backup store is full: prune archives first", Err: err})
	case err != nil:
		return unavailable("the backup store", err)
	}
	meta := backupstore.Summary(rep.Manifest)
	if err := st.SetMeta(ctx, name, meta); err != nil {
		s.log.Warn("imported archive stored without its summary", "archive", name, "err", err, "request_id", requestID(c))
	} else {
		info.Meta = meta
		info.Created = meta.CreatedAt.UTC()
	}
	if cl, ok := claimsOf(c); ok {
		s.recordAudit(c, audit.Event{
			Actor: cl.Subject, Role: string(cl.Role), Action: "backup.import", Resource: "backup", Outcome: audit.Success,
			Detail: map[string]any{"archive": name, "size": info.Size, "sha256": info.SHA256, "source_signature": string(srcStatus), "key_id": s.keys.KeyID()},
		})
	}
	s.log.Info("archive imported", "archive", name, "bytes", info.Size, "sha256", info.SHA256, "source_signature", srcStatus, "request_id", requestID(c))
	return c.JSON(http.StatusCreated, s.backupItemOf(info))
}

// importRefused audits a refused import (backup.import, failure) and
// returns its answer.
func (s *Server) importRefused(c echo.Context, name string, e *APIError) error {
	if cl, ok := claimsOf(c); ok {
		s.recordAudit(c, audit.Event{
			Actor: cl.Subject, Role: string(cl.Role), Action: "backup.import", Resource: "backup", Outcome: audit.Failure,
			Detail: map[string]any{"archive": name, "error_code": e.Code, "error": truncate(e.Message, 300)},
		})
	}
	return e
}

// spool is a received body in a private temporary file.
// ageMagic starts every age-encrypted file (its header's version line).
const ageMagic = "age-encryption.org/"

// isAgeFile reports whether f starts with the age header.
func isAgeFile(f *os.File) bool {
	b := make([]byte, len(ageMagic))
	n, err := f.ReadAt(b, 0)
	return err == nil && n == len(b) && string(b) == ageMagic
}

type spool struct {
	f      *os.File
	sha256 string
	size   int64
}

func (sp *spool) remove() {
	_ = sp.f.Close()
	_ = os.Remove(sp.f.Name())
}

// spoolBody copies body into a new file under the scratch directory
// (mode 0600), hashing it; the body is already capped (limitBody).
func (s *Server) spoolBody(body io.Reader) (*spool, error) {
	dir, err := archiver.ScratchDir(s.cfg)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "import-*")
	if err != nil {
		return nil, fmt.Errorf("create a temporary file: %w", err)
	}
	sp := &spool{f: f}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), body, make([]byte, 1<<20))
	if err != nil {
		sp.remove()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		sp.remove()
		return nil, fmt.Errorf("rewind %s: %w", f.Name(), err)
	}
	sp.sha256, sp.size = hex.EncodeToString(h.Sum(nil)), n
	return sp, nil
}

// signatureStatus is the status of a listed archive's signature with this
// API's keys (unchecked without a key).
func (s *Server) signatureStatus(in backupstore.Info) archivesig.Status {
	return s.keys.StatusOf(in.Name, in.SHA256, in.Signature)
}

// importBodyLimit is the body limit of the import route, in bytes.
func importBodyLimit(cfg config.Config) int64 {
	mb := cfg.BackupImportMaxMB
	if mb <= 0 {
		mb = config.DefaultBackupImportMaxMB
	}
	return int64(mb) << 20
}

// apiKeys returns the API's archive keyring: BACKUP_SIGNING_KEY (and the
// old keys) when set; in development the key kept in DATA_DIR like the
// workers'; in production without a key, a verify-only keyring of the old
// keys (nil without them): the list then says "unchecked" and imports are
// refused (503 signing_key_missing).
func apiKeys(cfg config.Config, log *slog.Logger) (*archivesig.Keyring, error) {
	set := cfg.Signing()
	if set.Production && set.Key == "" {
		log.Warn("BACKUP_SIGNING_KEY is not set for the API: archive imports are refused and the list cannot check signatures")
		old, err := archivesig.ParseKeys(set.OldKeys)
		if err != nil || len(old) == 0 {
			return nil, err
		}
		return archivesig.NewKeyring(nil, old...), nil
	}
	keys, _, err := archivesig.Load(set)
	if err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	return keys, nil
}
