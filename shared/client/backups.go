package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Backup is one archive of GET /admin/db/backup/list (and the answer of an
// import).
type Backup struct {
	Filename      string            `json:"filename"`
	SizeBytes     int64             `json:"size_bytes"`
	SizeMB        float64           `json:"size_mb"`
	Created       time.Time         `json:"created"`
	Components    []string          `json:"components"`
	SHA256        string            `json:"sha256"`
	Verified      bool              `json:"verified"`
	VerifiedAt    *time.Time        `json:"verified_at"`
	VerifyOutcome string            `json:"verify_outcome,omitempty"`
	VerifyError   string            `json:"verify_error,omitempty"`
	Skipped       map[string]string `json:"skipped,omitempty"`
	Note          string            `json:"note,omitempty"`
	JobID         string            `json:"job_id,omitempty"`
	// Signed tells the archive has a stored signature; Signature is its
	// status with the API's keys: valid, invalid, unsigned or unchecked;
	// SignatureKeyID the key that signed it.
	Signed         bool   `json:"signed"`
	Signature      string `json:"signature"`
	SignatureKeyID string `json:"signature_key_id,omitempty"`
}

// Backups lists the archives, newest first (GET /admin/db/backup/list).
func (c *Client) Backups(ctx context.Context) ([]Backup, error) {
	var out struct {
		TotalBackups int      `json:"total_backups"`
		Backups      []Backup `json:"backups"`
	}
	err := c.get(ctx, "/admin/db/backup/list", nil, &out)
	return out.Backups, err
}

// Headers of an archive download.
const (
	HeaderArchiveSHA256    = "X-Archive-SHA256"
	HeaderArchiveSignature = "X-Archive-Signature"
)

// Download is what DownloadBackup wrote.
type Download struct {
	Name string `json:"name"`
	// Bytes were written.
	Bytes int64 `json:"bytes"`
	// SHA256 is the digest of the bytes written, equal to the stored
	// digest the API announced (else DownloadBackup failed).
	SHA256 string `json:"sha256"`
	// Signature is the archive's signature as the API sent it, empty for
	// an unsigned archive.
	Signature string `json:"signature,omitempty"`
}

// ErrDigestMismatch matches (errors.Is) a download whose bytes do not have
// the digest the API announced, or that ended short.
var ErrDigestMismatch = errors.New("archive digest mismatch")

// DigestError is a download that does not match the stored digest or size.
type DigestError struct {
	Name              string
	Want, Got         string
	WantSize, GotSize int64
}

// Error names the archive and both digests.
func (e *DigestError) Error() string {
	if e.WantSize >= 0 && e.WantSize != e.GotSize {
		return fmt.Sprintf("archive %s: got %d bytes, the API announced %d", e.Name, e.GotSize, e.WantSize)
	}
	return fmt.Sprintf("archive %s: sha256 %s, the stored digest is %s", e.Name, e.Got, e.Want)
}

// Is makes errors.Is(err, ErrDigestMismatch) hold.
func (e *DigestError) Is(target error) bool { return target == ErrDigestMismatch }

// DownloadBackup streams archive name into w (GET
// /admin/db/backup/{name}/download; admin) and checks the bytes against
// the X-Archive-SHA256 digest and the length the API sent: a difference
// is a *DigestError (ErrDigestMismatch), and w then holds bytes that must
// not be used. progress, when not nil, is called with the bytes written so
// far and the total (-1 when unknown).
func (c *Client) DownloadBackup(ctx context.Context, name string, w io.Writer, progress func(done, total int64)) (Download, error) {
	path := "/admin/db/backup/" + escape(name) + "/download"
	resp, err := c.do(ctx, request{method: http.MethodGet, path: path, headers: map[string]string{"Accept": "application/octet-stream"}})
	if err != nil {
		return Download{Name: name}, err
	}
	defer resp.Body.Close()
	want := resp.Header.Get(HeaderArchiveSHA256)
	if want == "" {
		return Download{Name: name}, fmt.Errorf("client: %s: the answer has no %s header: the digest cannot be checked", path, HeaderArchiveSHA256)
	}
	h := sha256.New()
	dst := io.MultiWriter(w, h)
	if progress != nil {
		dst = &countingWriter{w: dst, total: resp.ContentLength, fn: progress}
	}
	n, err := io.Copy(dst, resp.Body)
	d := Download{Name: name, Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil)), Signature: resp.Header.Get(HeaderArchiveSignature)}
	if err != nil {
		if ctx.Err() != nil {
			return d, fmt.Errorf("client: download %s: %w", name, ctx.Err())
		}
		return d, fmt.Errorf("client: download %s after %d bytes: %w", name, n, err)
	}
	if (resp.ContentLength >= 0 && n != resp.ContentLength) || d.SHA256 != want {
		return d, &DigestError{Name: name, Want: want, Got: d.SHA256, WantSize: resp.ContentLength, GotSize: n}
	}
	return d, nil
}

// ImportBackup brings an archive made by another deployment in (POST
// /admin/db/backup/import?confirm=true; admin): the API checks it whole
// before it lists it, signs it with its own key and answers with its
// entry. name may be empty (the API makes a fresh one); size is the
// archive's length (-1 when unknown); sourceSignature, when not empty, is
// the signature the archive had where it came from (Download.Signature),
// audited as the import's source signature status. An invalid archive is
// a 422 archive_invalid, a taken name a 409 archive_exists.
func (c *Client) ImportBackup(ctx context.Context, name string, r io.Reader, size int64, sourceSignature string) (Backup, error) {
	q := confirm()
	setIf(q, "name", name)
	req := request{method: http.MethodPost, path: "/admin/db/backup/import", query: q,
		body: r, ctype: "application/octet-stream", length: size}
	if sourceSignature != "" {
		req.headers = map[string]string{HeaderArchiveSignature: sourceSignature}
	}
	var out Backup
	err := c.call(ctx, req, &out)
	return out, err
}

// countingWriter reports progress of a copy.
type countingWriter struct {
	w     io.Writer
	done  int64
	total int64
	fn    func(done, total int64)
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.done += int64(n)
	cw.fn(cw.done, cw.total)
	return n, err //nolint:wrapcheck // a writer passes its destination's error through
}

// ProgressReader wraps r, calling fn with the bytes read so far and total
// after each read (an upload's progress).
func ProgressReader(r io.Reader, total int64, fn func(done, total int64)) io.Reader {
	return &progressReader{r: r, total: total, fn: fn}
}

type progressReader struct {
	r     io.Reader
	done  int64
	total int64
	fn    func(done, total int64)
}

func (pr *progressReader) Read(p []byte) (int, error) {
	n, err := pr.r.Read(p)
	pr.done += int64(n)
	pr.fn(pr.done, pr.total)
	return n, err //nolint:wrapcheck // a reader passes io.EOF through unwrapped
}
