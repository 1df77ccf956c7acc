// Package backupcrypt encrypts backup archives at rest with age
// (filippo.io/age): the backup workers encrypt each compressed archive to
// the public keys of BACKUP_AGE_RECIPIENTS, and only the hosts that verify
// and restore archives hold the private keys, in the age identity file
// BACKUP_AGE_IDENTITY_FILE. A configured key that cannot be used is an
// error at load time: an archive is never written in plaintext because a
// key was mistyped.
package backupcrypt

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"filippo.io/age"
)

// Method is the encryption method an archive's record names.
const Method = "age"

// ErrNoMatch is wrapped by Decrypt's error when none of the identities
// is a recipient of the archive (a wrong or dropped key), or its header
// is not an age header.
var ErrNoMatch = errors.New("no identity of BACKUP_AGE_IDENTITY_FILE can decrypt it")

// Recipients are the public keys archives are encrypted to.
type Recipients struct {
	list         []age.Recipient
	fingerprints []string
}

// ParseRecipients parses BACKUP_AGE_RECIPIENTS: age public keys (age1…,
// including age1pq1… hybrid keys), comma separated, blanks around them
// ignored. An empty s is no encryption (nil, nil); a malformed or
// duplicate entry is an error naming its position (never the key
// material of a mistakenly pasted private key).
func ParseRecipients(s string) (*Recipients, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	r := &Recipients{}
	seen := map[string]bool{}
	for i, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, fmt.Errorf("recipient %d is empty", i+1)
		}
		if strings.HasPrefix(strings.ToUpper(f), "AGE-SECRET-KEY-") {
			return nil, fmt.Errorf("recipient %d is a private key (AGE-SECRET-KEY-…); give its public key (age-keygen -y) and keep the private key only where archives are verified and restored", i+1)
		}
		rec, err := age.ParseRecipients(strings.NewReader(f))
		if err != nil || len(rec) != 1 {
			return nil, fmt.Errorf("recipient %d is not an age public key (age1…, from age-keygen)", i+1)
		}
		if seen[f] {
			return nil, fmt.Errorf("recipient %d is listed twice", i+1)
		}
		seen[f] = true
		r.list = append(r.list, rec[0])
		r.fingerprints = append(r.fingerprints, Fingerprint(f))
	}
	return r, nil
}

// Fingerprint is what an archive's record says of a recipient: "sha256:"
// and the first 16 hex digits of the SHA-256 of its public key string.
// `printf %s age1… | sha256sum | cut -c1-16` gives the same digits.
func Fingerprint(recipient string) string {
	sum := sha256.Sum256([]byte(recipient))
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// Fingerprints returns the recipients' fingerprints, in the order given.
func (r *Recipients) Fingerprints() []string {
	return append([]string(nil), r.fingerprints...)
}

// Encrypt returns a writer whose bytes are written to dst as the age
// ciphertext for every recipient; Close writes the last chunk (it does
// not close dst).
func (r *Recipients) Encrypt(dst io.Writer) (io.WriteCloser, error) {
	w, err := age.Encrypt(dst, r.list...)
	if err != nil {
		return nil, fmt.Errorf("age encrypt: %w", err)
	}
	return w, nil
}

// Identities are the private keys archives are decrypted with.
type Identities struct {
	path string
	list []age.Identity
}

// LoadIdentities reads the age identity file at path (age-keygen's output;
// several identities, one a line, '#' comments): an empty path is none
// (nil, nil). It refuses a file that is missing, unreadable, not a regular
// file, readable or writable by its group or others (chmod 600; group read
// is accepted only for this process's own group, see checkPrivate), or
// that holds no identity or a malformed one.
func LoadIdentities(path string) (*Identities, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("identity file %s does not exist", path)
		}
		return nil, fmt.Errorf("identity file %s is not readable: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("identity file %s is not a regular file", path)
	}
	if err := checkPrivate(path, st); err != nil {
		return nil, err
	}
	ids, err := age.ParseIdentities(f)
	if err != nil {
		// age's errors name the line, never the key material.
		return nil, fmt.Errorf("identity file %s holds no usable age identity: %w", path, err)
	}
	return &Identities{path: path, list: ids}, nil
}

// checkPrivate refuses an identity file that others may read or that
// its group may write or read. One exception: group read when the group
// is this process's own (Kubernetes mounts a Secret volume root:fsGroup
// mode 0440 under a pod securityContext.fsGroup, the pod's own group).
func checkPrivate(path string, st fs.FileInfo) error {
	perm := st.Mode().Perm()
	refuse := perm&0o007 != 0 || perm&0o030 != 0
	if !refuse && perm&0o040 != 0 {
		sys, ok := st.Sys().(*syscall.Stat_t)
		refuse = !ok || int(sys.Gid) != os.Getegid()
	}
	if refuse {
		return fmt.Errorf("identity file %s has mode %#o: its group or others may access it (chmod 600)", path, perm)
	}
	return nil
}

// Path is the file the identities were read from.
func (ids *Identities) Path() string { return ids.path }

// Len is the number of identities.
func (ids *Identities) Len() int { return len(ids.list) }

// Decrypt returns the plaintext of the age ciphertext src. An error
// wrapping ErrNoMatch means no identity is a recipient of it (or it has no
// age header); a later read error means the ciphertext is damaged.
func (ids *Identities) Decrypt(src io.Reader) (io.Reader, error) {
	r, err := age.Decrypt(src, ids.list...)
	if err != nil {
		return nil, fmt.Errorf("%w (%d identities in %s): %w", ErrNoMatch, len(ids.list), ids.path, err)
	}
	return r, nil
}
