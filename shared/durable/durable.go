// Package durable holds the file-system step that makes a rename survive a
// crash: after writing a temp file, fsyncing it and renaming it into
// place, the directory itself must be fsynced.
package durable

import (
	"fmt"
	"os"
)

// SyncDir fsyncs a directory, so a rename or create inside it is on disk.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
