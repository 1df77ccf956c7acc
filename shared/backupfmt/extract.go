package backupfmt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// ExtractOptions configure Extract.
type ExtractOptions struct {
	ReadOptions
	// Filter selects the files to write, by path; nil writes every file.
	// The others are still read and verified.
	Filter func(path string) bool
	// MaxBytes caps the bytes written in all (0: no cap but Expect's sizes).
	MaxBytes int64
}

// Extract writes the archive's logical files (parts joined) into dir, which
// must exist, as dir/<component>/<name> with mode 0600, fsynced. It is safe
// against hostile archives: only regular-file entries whose names pass
// ValidatePath are accepted (no absolute paths, "..", links, devices), files
// are created exclusively (never overwriting, never following a link at the
// target) through an os.Root confined to dir, so nothing is ever written
// outside dir.
//
// The manifest is the last entry, so without opts.Expect sizes and hashes
// are checked only at the end; with Expect (the Manifest of a previous
// Verify) a name not in it or more bytes than it says stop the extraction
// at once. On any failure every file and directory Extract created is
// removed again and the error says why; on success the manifest is returned.
func Extract(ctx context.Context, r io.Reader, dir string, opts ExtractOptions) (Manifest, error) {
	if dir == "" {
		return Manifest{}, errors.New("extract: empty directory")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Manifest{}, fmt.Errorf("extract: %w", err)
	}
	defer root.Close()
	var files, dirs []string
	var written int64
	fn := func(ctx context.Context, f File, content io.Reader) error {
		if opts.Filter != nil && !opts.Filter(f.Path) {
			return nil
		}
		elems := strings.Split(path.Dir(f.Path), "/")
		for i := range elems {
			sub := strings.Join(elems[:i+1], "/")
			err := root.Mkdir(sub, 0o700)
			if err == nil {
				dirs = append(dirs, sub)
				continue
			}
			if !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("extract: %w", err)
			}
			if st, err := root.Lstat(sub); err != nil || !st.IsDir() {
				return fmt.Errorf("extract: %s exists and is not a directory", sub)
			}
		}
		out, err := root.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("extract: %w", err)
		}
		files = append(files, f.Path)
		var dst io.Writer = out
		if opts.MaxBytes > 0 {
			dst = &capWriter{w: out, left: opts.MaxBytes - written}
		}
		n, err := io.Copy(dst, content)
		written += n
		if err != nil {
			_ = out.Close()
			return err
		}
		if err := out.Sync(); err != nil {
			_ = out.Close()
			return fmt.Errorf("extract: sync %s: %w", f.Path, err)
		}
		if err := out.Close(); err != nil {
			return fmt.Errorf("extract: close %s: %w", f.Path, err)
		}
		return nil
	}
	m, err := Walk(ctx, r, opts.ReadOptions, fn)
	if err != nil {
		for _, file := range slices.Backward(files) {
			_ = root.Remove(file)
		}
		for _, dir := range slices.Backward(dirs) {
			_ = root.Remove(dir)
		}
		return Manifest{}, err
	}
	return m, nil
}

var errExtractCap = errors.New("extract: more bytes than MaxBytes allows")

type capWriter struct {
	w    io.Writer
	left int64
}

func (c *capWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		return 0, errExtractCap
	}
	n, err := c.w.Write(p)
	c.left -= int64(n)
	return n, err
}
