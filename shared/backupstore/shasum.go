package backupstore

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// shaLine is the content of an archive's .sha256 sidecar, in sha256sum's
// format ("<hex>  <name>\n"), so `sha256sum -c` checks a local archive.
func shaLine(sum, name string) []byte { return []byte(sum + "  " + name + "\n") }

// parseSHALine returns the SHA-256 (lower-case hex) a .sha256 sidecar's
// content b records for name, or "" when b is not such a line for name.
func parseSHALine(b []byte, name string) string {
	line, _, _ := bufio.NewReader(bytes.NewReader(b)).ReadLine()
	sum, file, _ := strings.Cut(string(line), "  ")
	if len(sum) != sha256.Size*2 || file != name {
		return ""
	}
	if _, err := hex.DecodeString(sum); err != nil {
		return ""
	}
	return strings.ToLower(sum)
}
