//go:build !linux

package durable

import (
	"errors"
	"os"
)

// setDirect fails where Copy does not use direct I/O: it writes through
// the page cache.
func setDirect(*os.File, bool) error { return errors.ErrUnsupported }

// isDirect is false where Copy does not use direct I/O.
func isDirect(*os.File) bool { return false }

// directRefused is false where Copy does not use direct I/O.
func directRefused(error) bool { return false }
