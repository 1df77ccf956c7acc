package backupstore

// The S3 store (BACKUP_STORE=s3): archives in an S3-compatible bucket,
// through minio-go v7.
//
// S3 layout, under BACKUP_S3_PREFIX in BACKUP_S3_BUCKET:
//
//	backup-<time>-<id>.tar.gz             the archive
//	backup-<time>-<id>.tar.gz.sha256      "<hex>  <name>", as in the local store
//	backup-<time>-<id>.tar.gz.meta.json   Meta, once set
//
// Put streams the archive as a multipart upload, one part of
// BACKUP_S3_PART_SIZE_MB at a time from one reused buffer (the memory an
// upload holds, whatever the archive's size), hashing it as it goes. When
// the source ends it writes the .sha256 object and then completes the
// upload: CompleteMultipartUpload is the commit, atomic on every S3
// server, so an archive is never listed before it is whole and always
// has its SHA-256 once listed. Any failure before that aborts the upload
// (its parts are freed) and removes the .sha256; nothing is listed. An
// upload whose writer was killed stays incomplete (invisible): Put
// aborts incomplete uploads of the prefix older than StaleAfter, at most
// every StaleAfter/4 (a bucket lifecycle rule AbortIncompleteMultipartUpload
// does the same on the server).
//
// With BACKUP_S3_LOCK_DAYS the archive and its .sha256 are written under
// object-lock retention (GOVERNANCE or COMPLIANCE) until that many days
// later; NewS3 refuses a bucket without object lock. On a versioned bucket
// (AWS: object lock needs versioning) Delete then leaves a delete marker:
// the archive is no longer listed but its locked version stays until the
// retention ends. A server without versioning refuses the delete
// (ErrLocked), and retention keeps the archive.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/ctxio"
)

// Errors of the S3 store, beside the Store's own (ErrNotFound, ErrExists,
// ErrNoSpace — a QuotaExceeded or InsufficientStorage answer).
var (
	// ErrAccessDenied: the server refused the credentials or the request
	// (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch, an expired
	// token).
	ErrAccessDenied = errors.New("backup store: S3 access denied (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or BACKUP_S3_CREDENTIALS_FILE, and the bucket policy)")
	// ErrNoBucket: BACKUP_S3_BUCKET does not exist (the store never
	// creates it).
	ErrNoBucket = errors.New("backup store: S3 bucket does not exist")
	// ErrUnreachable: no answer from BACKUP_S3_ENDPOINT (connection
	// refused, DNS, timeout).
	ErrUnreachable = errors.New("backup store: S3 endpoint unreachable")
	// ErrLocked: the server refused to delete an archive under
	// object-lock retention (a bucket without versioning, where no delete
	// marker can hide it). Retention keeps such an archive and says why.
	ErrLocked = errors.New("backup store: the archive is under object-lock retention")
)

// s3MaxRetries is how often minio-go retries a failed request (it backs
// off between tries); an unreachable endpoint fails after them.
const s3MaxRetries = 3

// S3 keeps archives in an S3-compatible bucket. It is safe for concurrent
// use.
type S3 struct {
	cfg    config.S3
	client *minio.Client
	core   minio.Core
	// lastClean is when Put last aborted stale uploads (unix nanoseconds).
	lastClean atomic.Int64
	// wrap, when set (tests), wraps the source of an upload.
	wrap func(io.Reader) io.Reader
}

var _ Store = (*S3)(nil)

// NewS3 opens the bucket cfg names: it must exist (ErrNoBucket) and the
// credentials must be accepted (ErrAccessDenied); with cfg.LockDays the
// bucket must have object lock enabled. Nothing is created.
func NewS3(ctx context.Context, cfg config.S3) (*S3, error) {
	s, err := newS3(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// newS3 makes the client, without a request.
func newS3(cfg config.S3) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("backup store: BACKUP_STORE=s3 needs BACKUP_S3_BUCKET")
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("backup store: BACKUP_S3_ENDPOINT %q: want an http:// or https:// URL", cfg.Endpoint)
	}
	if cfg.PartSize <= 0 {
		cfg.PartSize = config.DefaultS3PartSizeMiB << 20
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	var creds *credentials.Credentials
	if cfg.CredentialsFile != "" {
		creds = credentials.NewFileAWSCredentials(cfg.CredentialsFile, cfg.Profile)
	} else {
		creds = credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds: creds, Secure: u.Scheme == "https", Region: cfg.Region, BucketLookup: lookup, MaxRetries: s3MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("backup store: S3 client for %s: %w", cfg.Endpoint, err)
	}
	return &S3{cfg: cfg, client: client, core: minio.Core{Client: client}}, nil
}

// check asks the server whether the bucket exists (and, with LockDays,
// has object lock enabled).
func (s *S3) check(ctx context.Context) error {
	cfg, client := s.cfg, s.client
	// A listing rather than HEAD bucket: a HEAD answer has no body, so a
	// refused key id and a missing bucket can look alike (a bare 404).
	ctx, cancel := opCtx(ctx)
	defer cancel()
	if _, err := s.core.ListObjectsV2(cfg.Bucket, cfg.Prefix, "", "", "/", 1); err != nil {
		return fmt.Errorf("backup store: open %s: %w", s.Describe(), s.classify(err))
	}
	if cfg.LockDays > 0 {
		enabled, _, _, _, err := client.GetObjectLockConfig(ctx, cfg.Bucket)
		if err != nil {
			return fmt.Errorf("backup store: BACKUP_S3_LOCK_DAYS=%d but bucket %s has no object lock enabled (create it with object lock, or set BACKUP_S3_LOCK_DAYS=0): %w", cfg.LockDays, cfg.Bucket, s.classify(err))
		}
		if enabled != "Enabled" {
			return fmt.Errorf("backup store: BACKUP_S3_LOCK_DAYS=%d but bucket %s has no object lock enabled (its object lock configuration says %q)", cfg.LockDays, cfg.Bucket, enabled)
		}
	}
	return nil
}

// Describe implements Store.
func (s *S3) Describe() string {
	d := fmt.Sprintf("S3 bucket %s at %s", s.cfg.Bucket, s.cfg.Endpoint)
	if s.cfg.Prefix != "" {
		d += " (prefix " + s.cfg.Prefix + ")"
	}
	return d
}

// key is only ever called with a name ParseArchiveName accepted (plus a
// fixed suffix).
func (s *S3) key(name string) string { return s.cfg.Prefix + name }

// classify marks what the server or the network said with the store's
// errors: ErrNotFound, ErrNoBucket, ErrAccessDenied, ErrNoSpace,
// ErrUnreachable; others pass unchanged.
func (s *S3) classify(err error) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	// The one place the text is looked at: S3 has no code of its own for
	// a delete refused by object lock (AWS and versitygw answer
	// AccessDenied "… protected by object lock").
	if resp.Code == "AccessDenied" && strings.Contains(strings.ToLower(resp.Message), "object lock") {
		return fmt.Errorf("%w: %w", ErrLocked, err)
	}
	switch resp.Code {
	case "NoSuchKey", "NoSuchVersion":
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case "NoSuchBucket":
		return fmt.Errorf("%w (%s): %w", ErrNoBucket, s.cfg.Bucket, err)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidSecurity", "AccountProblem",
		"XAdminUserNotFound": // versitygw's answer to an unknown key id
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	case "QuotaExceeded", "InsufficientStorage", "XMinioStorageFull", "XMinioAdminBucketQuotaExceeded":
		return fmt.Errorf("%w (%s): %w", ErrNoSpace, s.Describe(), err)
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w (%s): %w", ErrUnreachable, s.cfg.Endpoint, err)
		}
	}
	return err
}

// exists checks that the archive is there: ErrNotFound for invalid and
// unknown names.
func (s *S3) exists(ctx context.Context, op, name string) error {
	if err := checkName(op, name); err != nil {
		return err
	}
	if _, err := s.client.StatObject(ctx, s.cfg.Bucket, s.key(name), minio.StatObjectOptions{}); err != nil {
		return fmt.Errorf("backup store: %s %s: %w", op, name, s.classify(err))
	}
	return nil
}

// lockOpts are the object-lock options of the archive and its .sha256.
func (s *S3) lockOpts(opts minio.PutObjectOptions) minio.PutObjectOptions {
	if s.cfg.LockDays > 0 {
		opts.Mode = minio.RetentionMode(s.cfg.LockMode)
		opts.RetainUntilDate = time.Now().UTC().Add(time.Duration(s.cfg.LockDays) * 24 * time.Hour)
	}
	return opts
}

// Put implements Store (see the layout above): a multipart upload from one
// part-size buffer, the .sha256 and (sealed) the .sig, then the
// completion. On any error the upload is aborted and the sidecars removed,
// with a context that is not cancelled, so that a cancelled Put leaves
// nothing behind either.
func (s *S3) Put(ctx context.Context, name string, r io.Reader, opts ...PutOption) (Info, error) {
	o := putOpts(opts)
	if _, err := backupfmt.ParseArchiveName(name); err != nil {
		return Info{}, fmt.Errorf("backup store: put: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, err)
	}
	if _, err := s.client.StatObject(ctx, s.cfg.Bucket, s.key(name), minio.StatObjectOptions{}); err == nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, ErrExists)
	} else if err := s.classify(err); !errors.Is(err, ErrNotFound) {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, err)
	}
	s.maybeAbortStale(ctx)

	key := s.key(name)
	uploadID, err := s.core.NewMultipartUpload(ctx, s.cfg.Bucket, key, s.lockOpts(minio.PutObjectOptions{ContentType: "application/octet-stream"}))
	if err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: start upload: %w", name, s.classify(err))
	}
	committed, shaWritten := false, false
	defer func() {
		if committed {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), OpTimeout)
		defer cancel()
		_ = s.core.AbortMultipartUpload(cctx, s.cfg.Bucket, key, uploadID)
		if shaWritten {
			_ = s.client.RemoveObject(cctx, s.cfg.Bucket, key+shaSuffix, minio.RemoveObjectOptions{})
			_ = s.client.RemoveObject(cctx, s.cfg.Bucket, key+sigSuffix, minio.RemoveObjectOptions{})
		}
	}()

	src := ctxio.Reader(ctx, r)
	if s.wrap != nil {
		src = s.wrap(src)
	}
	h := sha256.New()
	buf := make([]byte, s.cfg.PartSize)
	var parts []minio.CompletePart
	var size int64
	for part := 1; ; part++ {
		n, rerr := io.ReadFull(src, buf)
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			return Info{}, fmt.Errorf("backup store: put %s: after %d bytes: %w", name, size, rerr)
		}
		if n == 0 && part > 1 {
			break
		}
		h.Write(buf[:n])
		ps := sha256.Sum256(buf[:n])
		op, err := s.core.PutObjectPart(ctx, s.cfg.Bucket, key, uploadID, part, bytes.NewReader(buf[:n]), int64(n),
			minio.PutObjectPartOptions{Sha256Hex: hex.EncodeToString(ps[:])})
		if err != nil {
			return Info{}, fmt.Errorf("backup store: put %s: part %d after %d bytes: %w", name, part, size, s.classify(err))
		}
		parts = append(parts, minio.CompletePart{PartNumber: part, ETag: op.ETag})
		size += int64(n)
		if rerr != nil { // the source ended inside this part
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	sig, err := o.sealed(name, sum)
	if err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, err)
	}
	line := shaLine(sum, name)
	shaWritten = true
	if _, err := s.client.PutObject(ctx, s.cfg.Bucket, key+shaSuffix, bytes.NewReader(line), int64(len(line)),
		s.lockOpts(minio.PutObjectOptions{ContentType: "text/plain", DisableMultipart: true})); err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: write %s: %w", name, shaSuffix, s.classify(err))
	}
	// The signature is written before the completion, like the .sha256, so
	// a listed archive is never unsigned; an unsealed Put removes the .sig
	// an earlier archive of that name may have left.
	if sig != "" {
		b := []byte(sig + "\n")
		if _, err := s.client.PutObject(ctx, s.cfg.Bucket, key+sigSuffix, bytes.NewReader(b), int64(len(b)),
			s.lockOpts(minio.PutObjectOptions{ContentType: "text/plain", DisableMultipart: true})); err != nil {
			return Info{}, fmt.Errorf("backup store: put %s: write %s: %w", name, sigSuffix, s.classify(err))
		}
	} else if err := s.client.RemoveObject(ctx, s.cfg.Bucket, key+sigSuffix, minio.RemoveObjectOptions{}); err != nil {
		if err := s.classify(err); !errors.Is(err, ErrNotFound) {
			return Info{}, fmt.Errorf("backup store: put %s: remove stale %s: %w", name, sigSuffix, err)
		}
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.cfg.Bucket, key, uploadID, parts, minio.PutObjectOptions{}); err != nil {
		cerr := s.classify(err)
		// An answer lost after the server committed leaves a whole
		// archive: remove it too, so that a failed Put lists nothing.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), OpTimeout)
		defer cancel()
		if _, serr := s.client.StatObject(dctx, s.cfg.Bucket, key, minio.StatObjectOptions{}); serr == nil {
			if rerr := s.client.RemoveObject(dctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{}); rerr != nil {
				cerr = fmt.Errorf("%w (and the archive it may have committed could not be removed: %w)", cerr, rerr)
			}
		}
		return Info{}, fmt.Errorf("backup store: put %s: complete upload: %w", name, cerr)
	}
	committed = true
	oi, err := s.client.StatObject(ctx, s.cfg.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, s.classify(err))
	}
	return Info{Name: name, Size: size, Modified: oi.LastModified.UTC(), SHA256: sum, Created: created(name, Meta{}), Signature: sig}, nil
}

// maybeAbortStale aborts the incomplete uploads of the prefix started
// more than StaleAfter ago (a writer killed mid-Put), at most every
// StaleAfter/4; best effort, bounded by OpTimeout.
func (s *S3) maybeAbortStale(ctx context.Context) {
	now := time.Now()
	last := s.lastClean.Load()
	if now.Sub(time.Unix(0, last)) < StaleAfter/4 || !s.lastClean.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	_, _ = s.AbortStale(ctx, now.Add(-StaleAfter))
}

// AbortStale aborts the incomplete multipart uploads of archives under the
// prefix that were started before before, and returns how many.
func (s *S3) AbortStale(ctx context.Context, before time.Time) (int, error) {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	n := 0
	for up := range s.client.ListIncompleteUploads(ctx, s.cfg.Bucket, s.cfg.Prefix, false) {
		if up.Err != nil {
			return n, fmt.Errorf("backup store: list incomplete uploads: %w", s.classify(up.Err))
		}
		name := strings.TrimPrefix(up.Key, s.cfg.Prefix)
		if _, err := backupfmt.ParseArchiveName(name); err != nil || !up.Initiated.Before(before) {
			continue
		}
		if err := s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, up.Key, up.UploadID); err != nil {
			return n, fmt.Errorf("backup store: abort the stale upload of %s: %w", name, s.classify(err))
		}
		n++
	}
	return n, nil
}

// List implements Store.
func (s *S3) List(ctx context.Context) ([]Info, error) {
	lctx, cancel := opCtx(ctx)
	defer cancel()
	infos := []Info{}
	for oi := range s.client.ListObjects(lctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.cfg.Prefix}) {
		if oi.Err != nil {
			return nil, fmt.Errorf("backup store: list %s: %w", s.Describe(), s.classify(oi.Err))
		}
		name := strings.TrimPrefix(oi.Key, s.cfg.Prefix)
		if _, err := backupfmt.ParseArchiveName(name); err != nil {
			continue
		}
		infos = append(infos, s.info(lctx, name, oi))
	}
	sortInfos(infos)
	return infos, nil
}

// info assembles an Info; an unreadable sidecar leaves its field empty.
func (s *S3) info(ctx context.Context, name string, oi minio.ObjectInfo) Info {
	m, _ := s.readMeta(ctx, name)
	return Info{Name: name, Size: oi.Size, Modified: oi.LastModified.UTC(), SHA256: s.readSHA(ctx, name), Created: created(name, m), Meta: m, Signature: s.readSig(ctx, name)}
}

// readSig returns the .sig object's line, empty when there is none or it
// is not a plausible signature (its check says the rest).
func (s *S3) readSig(ctx context.Context, name string) string {
	b, err := s.small(ctx, s.key(name)+sigSuffix)
	if err != nil || b == nil || len(b) > MaxSignatureSize {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// small reads a sidecar object: nil, nil when it does not exist.
func (s *S3) small(ctx context.Context, key string) ([]byte, error) {
	rc, _, _, err := s.core.GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		if err := s.classify(err); errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		return nil, s.classify(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxMetaSize+1))
	if err != nil {
		return nil, s.classify(err)
	}
	return b, nil
}

func (s *S3) readSHA(ctx context.Context, name string) string {
	b, err := s.small(ctx, s.key(name)+shaSuffix)
	if err != nil || b == nil {
		return ""
	}
	return parseSHALine(b, name)
}

func (s *S3) readMeta(ctx context.Context, name string) (Meta, error) {
	b, err := s.small(ctx, s.key(name)+metaSuffix)
	if err != nil {
		return Meta{}, fmt.Errorf("backup store: meta of %s: %w", name, err)
	}
	m, err := decodeMeta(b)
	if err != nil {
		return Meta{}, fmt.Errorf("backup store: meta of %s: %w", name, err)
	}
	return m, nil
}

// Open implements Store.
func (s *S3) Open(ctx context.Context, name string) (io.ReadCloser, Info, error) {
	if err := checkName("open", name); err != nil {
		return nil, Info{}, err
	}
	rc, oi, _, err := s.core.GetObject(ctx, s.cfg.Bucket, s.key(name), minio.GetObjectOptions{})
	if err != nil {
		return nil, Info{}, fmt.Errorf("backup store: open %s: %w", name, s.classify(err))
	}
	return rc, s.info(ctx, name, oi), nil
}

// Delete implements Store: the archive first (after which it is not
// listed), then its sidecars.
func (s *S3) Delete(ctx context.Context, name string) error {
	if err := s.exists(ctx, "delete", name); err != nil {
		return err
	}
	ctx, cancel := opCtx(ctx)
	defer cancel()
	for _, suffix := range []string{"", shaSuffix, sigSuffix, metaSuffix} {
		if err := s.client.RemoveObject(ctx, s.cfg.Bucket, s.key(name)+suffix, minio.RemoveObjectOptions{}); err != nil {
			if err := s.classify(err); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("backup store: delete %s%s: %w", name, suffix, err)
			}
		}
	}
	return nil
}

// SetMeta implements Store: the .meta.json object is replaced (one PUT,
// atomic).
func (s *S3) SetMeta(ctx context.Context, name string, m Meta) error {
	if err := s.exists(ctx, "set meta", name); err != nil {
		return err
	}
	b, err := encodeMeta(m)
	if err != nil {
		return fmt.Errorf("backup store: set meta %s: %w", name, err)
	}
	ctx, cancel := opCtx(ctx)
	defer cancel()
	if _, err := s.client.PutObject(ctx, s.cfg.Bucket, s.key(name)+metaSuffix, bytes.NewReader(b), int64(len(b)),
		minio.PutObjectOptions{ContentType: "application/json", DisableMultipart: true}); err != nil {
		return fmt.Errorf("backup store: set meta %s: %w", name, s.classify(err))
	}
	return nil
}

// Meta implements Store.
func (s *S3) Meta(ctx context.Context, name string) (Meta, error) {
	if err := s.exists(ctx, "meta", name); err != nil {
		return Meta{}, err
	}
	return s.readMeta(ctx, name)
}

// Usage of the S3 store is the bytes of its archives and sidecars under
// the prefix; S3 tells no limit (bus.Unlimited).
func (s *S3) Usage(ctx context.Context) (Usage, error) {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	var used int64
	for oi := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.cfg.Prefix}) {
		if oi.Err != nil {
			return Usage{}, fmt.Errorf("backup store usage: %w", s.classify(oi.Err))
		}
		used += oi.Size
	}
	return Usage{Used: used, Limit: bus.Unlimited}, nil
}
