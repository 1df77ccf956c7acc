package durable

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// setDirect turns O_DIRECT on or off for f (fcntl F_SETFL): writes then
// go from Copy's buffers to the device, past the page cache. It fails
// where the file system refuses direct I/O.
func setDirect(f *os.File, on bool) error {
	fd := int(f.Fd())
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		fl |= unix.O_DIRECT
	} else {
		fl &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl)
	return err
}

// isDirect reports whether O_DIRECT is on for f.
func isDirect(f *os.File) bool {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_DIRECT != 0
}

// directRefused reports whether err is a write's refusal of direct I/O
// (unaligned, or not supported by the file system).
func directRefused(err error) bool { return errors.Is(err, unix.EINVAL) }
