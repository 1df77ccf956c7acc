// Package agetest makes age keys and identity files for tests of archive
// encryption (BACKUP_AGE_RECIPIENTS, BACKUP_AGE_IDENTITY_FILE).
package agetest

import (
	"os"
	"strings"
	"testing"

	"filippo.io/age"
)

// Key is a fresh age X25519 key pair.
type Key struct {
	// Identity is the private key line (AGE-SECRET-KEY-1…).
	Identity string
	// Recipient is the public key (age1…).
	Recipient string
}

// NewKey generates a key pair.
func NewKey(t testing.TB) Key {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return Key{Identity: id.String(), Recipient: id.Recipient().String()}
}

// WriteIdentities (re)writes the identity file at path with the keys'
// identities, each after a "# public key:" comment as age-keygen writes
// them, mode 0600.
func WriteIdentities(t testing.TB, path string, keys ...Key) {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString("# public key: " + k.Recipient + "\n" + k.Identity + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}
