// Package keyfile keeps a development secret in a file: random bytes,
// hex-encoded, created once with mode 0600 and read back on every later
// start, so a development deployment needs no secret set by hand and
// every process sharing the directory agrees on it. Production sets its
// secrets in the environment and never calls this.
package keyfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LoadOrCreate returns the secret kept at path, creating it with n random
// bytes if the file does not exist (created reports that). The file is
// written to a temporary name and linked into place, so two processes
// starting at once agree on one secret and a reader never sees half a
// file. A file readable by group or others, or holding fewer than n
// hex-encoded bytes, is an error naming it.
func LoadOrCreate(path string, n int) (secret []byte, created bool, err error) {
	if b, err := Read(path, n); err == nil {
		return b, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, false, fmt.Errorf("keyfile: create directory of %s: %w", path, err)
	}
	key := make([]byte, n)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("keyfile: generate %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return nil, false, fmt.Errorf("keyfile: create %s: %w", path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.WriteString(hex.EncodeToString(key) + "\n")
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, fmt.Errorf("keyfile: write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race
			b, rerr := Read(path, n)
			return b, false, rerr
		}
		return nil, false, fmt.Errorf("keyfile: install %s: %w", path, err)
	}
	return key, true, nil
}

// Read returns the secret kept at path (fs.ErrNotExist when there is
// none): at least n hex-encoded bytes, in a file no one but its owner may
// read.
func Read(path string, n int) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("keyfile: %s: %w", path, err)
		}
		return nil, fmt.Errorf("keyfile: %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keyfile: %s is readable by others (mode %s): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyfile: read %s: %w", path, err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < n {
		return nil, fmt.Errorf("keyfile: %s: want at least %d hex-encoded bytes (delete the file to generate a new one)", path, n)
	}
	return key, nil
}
