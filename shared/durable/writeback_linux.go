package durable

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing the n bytes of f at off
// to disk without waiting for them (sync_file_range(2) with
// SYNC_FILE_RANGE_WRITE). It is a hint for speed, not durability: only
// fsync makes the data durable.
func startWriteback(f *os.File, off, n int64) error {
	err := unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
	if err == unix.ENOSYS || err == unix.EINVAL || err == unix.ESPIPE {
		return nil // not supported here (or not a regular file): fsync will do it all
	}
	return err
}
