package backupstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/ctxio"
	"github.com/insightops/insightops/shared/durable"
)

const (
	tmpPrefix  = ".tmp-"
	shaSuffix  = ".sha256"
	metaSuffix = ".meta.json"
	sigSuffix  = ".sig"
	// StaleAfter is the age after which NewLocal removes temp files and
	// sidecars without an archive, left by a crash.
	StaleAfter = time.Hour
)

// Local keeps archives in a directory. It is safe for concurrent use; two
// processes sharing the directory must not Put the same name at once (names
// carry the job id, and a job runs on one worker at a time).
type Local struct {
	dir string
	mu  sync.Mutex // serialises commits and sidecar writes in this process
	// wrap, when set (tests), wraps the writer of an archive's temp file,
	// to simulate a full disk.
	wrap func(io.Writer) io.Writer
}

var _ Store = (*Local)(nil)

// NewLocal opens (creating it if needed) the archive directory dir and
// removes temp files and orphaned sidecars older than StaleAfter.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("backup store: BACKUP_DIR is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("backup store: %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("backup store: create %s: %w", abs, err)
	}
	l := &Local{dir: abs}
	if err := l.removeStale(time.Now().Add(-StaleAfter)); err != nil {
		return nil, err
	}
	return l, nil
}

// Describe implements Store.
func (l *Local) Describe() string { return "local directory " + l.dir }

// Dir returns the archive directory.
func (l *Local) Dir() string { return l.dir }

func (l *Local) removeStale(before time.Time) error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("backup store: read %s: %w", l.dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		var stale bool
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			stale = true
		case strings.HasSuffix(name, shaSuffix) || strings.HasSuffix(name, metaSuffix) || strings.HasSuffix(name, sigSuffix):
			archive := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, shaSuffix), metaSuffix), sigSuffix)
			if _, err := backupfmt.ParseArchiveName(archive); err != nil {
				continue
			}
			_, err := os.Lstat(filepath.Join(l.dir, archive))
			stale = errors.Is(err, fs.ErrNotExist)
		}
		if !stale || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(before) {
			if err := os.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("backup store: remove stale %s: %w", name, err)
			}
		}
	}
	return nil
}

// path is only ever called with a name ParseArchiveName accepted (plus a
// fixed suffix): it cannot leave the directory.
func (l *Local) path(name string) string { return filepath.Join(l.dir, name) }

// Put implements Store: temp file, fsync, sidecar, rename, fsync of the
// directory. On any error (a full disk, ctx, r) the temp files are removed
// and earlier archives are untouched.
func (l *Local) Put(ctx context.Context, name string, r io.Reader, opts ...PutOption) (Info, error) {
	o := putOpts(opts)
	if _, err := backupfmt.ParseArchiveName(name); err != nil {
		return Info{}, fmt.Errorf("backup store: put: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, err)
	}
	if _, err := os.Lstat(l.path(name)); err == nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, ErrExists)
	}
	f, err := os.CreateTemp(l.dir, tmpPrefix+"*")
	if err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, err)
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	h := sha256.New()
	var dst io.Writer = f
	if l.wrap != nil {
		dst = l.wrap(f)
	}
	n, err := io.CopyBuffer(io.MultiWriter(dst, h), ctxio.Reader(ctx, r), make([]byte, 1<<20))
	if err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: after %d bytes: %w", name, n, noSpace(err, l.dir))
	}
	if err := f.Sync(); err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: fsync: %w", name, noSpace(err, l.dir))
	}
	if err := f.Close(); err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: close: %w", name, noSpace(err, l.dir))
	}
	sum := hex.EncodeToString(h.Sum(nil))
	sig, err := o.sealed(name, sum)
	if err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, err)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, err)
	}
	if _, err := os.Lstat(l.path(name)); err == nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, ErrExists)
	}
	// A meta sidecar of an earlier archive of that name is not this one's.
	if err := os.Remove(l.path(name + metaSuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, err)
	}
	// Nor a signature sidecar: an unsealed Put leaves the archive unsigned.
	if err := os.Remove(l.path(name + sigSuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, err)
	}
	if err := l.writeAtomic(name+shaSuffix, shaLine(sum, name)); err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, noSpace(err, l.dir))
	}
	if sig != "" {
		if err := l.writeAtomic(name+sigSuffix, []byte(sig+"\n")); err != nil {
			_ = os.Remove(l.path(name + shaSuffix))
			return Info{}, fmt.Errorf("backup store: put %s: %w", name, noSpace(err, l.dir))
		}
	}
	if err := os.Rename(tmp, l.path(name)); err != nil {
		_ = os.Remove(l.path(name + shaSuffix))
		_ = os.Remove(l.path(name + sigSuffix))
		return Info{}, fmt.Errorf("backup store: put %s: rename: %w", name, err)
	}
	committed = true
	if err := durable.SyncDir(l.dir); err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, err)
	}
	fi, err := os.Stat(l.path(name))
	if err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, err)
	}
	return Info{Name: name, Size: n, Modified: fi.ModTime().UTC(), SHA256: sum, Created: created(name, Meta{}), Signature: sig}, nil
}

// noSpace marks a full volume (ENOSPC) or a spent quota (EDQUOT) with
// ErrNoSpace, naming the directory; other errors pass unchanged.
func noSpace(err error, dir string) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w (%s): %w", ErrNoSpace, dir, err)
	}
	return err
}

// writeAtomic writes a small file: temp, fsync, rename (no directory fsync).
func (l *Local) writeAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(l.dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, l.path(name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// List implements Store.
func (l *Local) List(ctx context.Context) ([]Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("backup store: list %s: %w", l.dir, err)
	}
	infos := []Info{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if _, err := backupfmt.ParseArchiveName(e.Name()); err != nil {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("backup store: list: %w", err)
		}
		infos = append(infos, l.info(e.Name(), fi))
	}
	sortInfos(infos)
	return infos, nil
}

// info assembles an Info; an unreadable sidecar leaves its field empty.
func (l *Local) info(name string, fi fs.FileInfo) Info {
	m, _ := l.readMeta(name)
	return Info{Name: name, Size: fi.Size(), Modified: fi.ModTime().UTC(), SHA256: l.readSHA(name), Created: created(name, m), Meta: m, Signature: l.readSig(name)}
}

// readSig returns the signature sidecar's line, empty when there is none
// or it is not a plausible signature (its check says the rest).
func (l *Local) readSig(name string) string {
	f, err := os.Open(l.path(name + sigSuffix))
	if err != nil {
		return ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSignatureSize+1))
	if err != nil || len(b) > MaxSignatureSize {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (l *Local) readSHA(name string) string {
	b, err := os.ReadFile(l.path(name + shaSuffix))
	if err != nil {
		return ""
	}
	return parseSHALine(b, name)
}

func (l *Local) readMeta(name string) (Meta, error) {
	f, err := os.Open(l.path(name + metaSuffix))
	if errors.Is(err, fs.ErrNotExist) {
		return Meta{}, nil
	}
	if err != nil {
		return Meta{}, fmt.Errorf("backup store: meta of %s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxMetaSize+1))
	if err != nil {
		return Meta{}, fmt.Errorf("backup store: meta of %s: %w", name, err)
	}
	m, err := decodeMeta(b)
	if err != nil {
		return Meta{}, fmt.Errorf("backup store: meta of %s: %w", name, err)
	}
	return m, nil
}

// stat returns the archive's FileInfo, ErrNotFound unless a regular file.
func (l *Local) stat(op, name string) (fs.FileInfo, error) {
	if err := checkName(op, name); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(l.path(name))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.Mode().IsRegular()) {
		return nil, fmt.Errorf("backup store: %s %s: %w", op, name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("backup store: %s %s: %w", op, name, err)
	}
	return fi, nil
}

// Open implements Store.
func (l *Local) Open(ctx context.Context, name string) (io.ReadCloser, Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, Info{}, err
	}
	fi, err := l.stat("open", name)
	if err != nil {
		return nil, Info{}, err
	}
	f, err := os.Open(l.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Info{}, fmt.Errorf("backup store: open %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("backup store: open %s: %w", name, err)
	}
	return f, l.info(name, fi), nil
}

// Delete implements Store: the archive first (after which it is not
// listed), then its sidecars.
func (l *Local) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := l.stat("delete", name); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := os.Remove(l.path(name)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("backup store: delete %s: %w", name, ErrNotFound)
		}
		return fmt.Errorf("backup store: delete %s: %w", name, err)
	}
	for _, s := range []string{shaSuffix, sigSuffix, metaSuffix} {
		if err := os.Remove(l.path(name + s)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("backup store: delete %s%s: %w", name, s, err)
		}
	}
	return durable.SyncDir(l.dir)
}

// SetMeta implements Store.
func (l *Local) SetMeta(ctx context.Context, name string, m Meta) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := l.stat("set meta", name); err != nil {
		return err
	}
	b, err := encodeMeta(m)
	if err != nil {
		return fmt.Errorf("backup store: set meta %s: %w", name, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := os.Lstat(l.path(name)); err != nil {
		return fmt.Errorf("backup store: set meta %s: %w", name, ErrNotFound)
	}
	if err := l.writeAtomic(name+metaSuffix, b); err != nil {
		return fmt.Errorf("backup store: set meta %s: %w", name, noSpace(err, l.dir))
	}
	return nil
}

// Meta implements Store.
func (l *Local) Meta(ctx context.Context, name string) (Meta, error) {
	if err := ctx.Err(); err != nil {
		return Meta{}, err
	}
	if _, err := l.stat("meta", name); err != nil {
		return Meta{}, err
	}
	return l.readMeta(name)
}
