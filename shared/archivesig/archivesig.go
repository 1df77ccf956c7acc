// Package archivesig authenticates backup archives: an HMAC-SHA256, keyed
// with this deployment's BACKUP_SIGNING_KEY, over an archive's name, the
// SHA-256 of its stored bytes and the SHA-256 of its manifest.
//
// A signature is one line of ASCII, safe in an HTTP header and in NATS
// object metadata:
//
//	v1.<key id: 16 hex>.<manifest sha256: 64 hex>.<mac: 64 hex>
//
// The MAC is HMAC-SHA256(key, "insightops-archive-v1" NUL name NUL
// archive-sha256 NUL manifest-sha256), the digests in lower-case hex. The
// key id is derived from the key (the first 8 bytes of SHA-256 over a
// fixed label and the key), so keys rotate without naming them: the
// current key signs, the old ones (BACKUP_SIGNING_KEYS_OLD) only verify.
//
// Why an HMAC and not ed25519: every process that checks a signature also
// has to make one (the backup worker signs new archives and verifies them;
// the restore worker restores and signs its pre-restore safety backup; the
// API checks the list and signs an imported archive), so a public-only
// verifier would hold no less. One shared secret, from the standard
// library, is the smaller surface.
//
// The package knows nothing about stores or configuration: a store keeps
// the signature string beside the archive (package backupstore) and
// package archiver ties keys to the configuration.
package archivesig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Version is the signature format this package writes and accepts.
const Version = "v1"

// MinKeyBytes is the shortest key accepted, after decoding.
const MinKeyBytes = 32

// minDistinct is the fewest distinct byte values a key may have: 32
// random bytes have about 30, so fewer than this is a typed or repeated
// value, not a random key.
const minDistinct = 16

// label prefixes the signed message; keyIDLabel the key id's input.
const (
	label      = "insightops-archive-v1"
	keyIDLabel = "insightops-archive-key-id"
)

// Errors of Check. ErrUnsigned: there is no signature (or no stored
// digest, which the signature needs). ErrInvalid: a signature that does
// not match (a wrong or unknown key, another name or digest, a malformed
// value).
var (
	ErrUnsigned = errors.New("archive is not signed")
	ErrInvalid  = errors.New("archive signature is invalid")
	// ErrNoKey: a Keyring without a signing key was asked to sign.
	ErrNoKey = errors.New("no backup signing key")
)

// Key is one signing key and its derived id.
type Key struct {
	ID     string
	secret []byte
}

// ParseKey decodes a key given as hex or base64 (standard or URL
// alphabet, padded or not), e.g. the output of `openssl rand -base64 32`
// or `openssl rand -hex 32`. It must decode to at least MinKeyBytes bytes
// that do not look typed (at least 16 distinct byte values).
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Key{}, errors.New("empty key")
	}
	b, err := decodeKey(s)
	if err != nil {
		return Key{}, fmt.Errorf("not hex or base64 (generate one with `openssl rand -base64 32`): %w", err)
	}
	if len(b) < MinKeyBytes {
		return Key{}, fmt.Errorf("decodes to %d bytes, at least %d are required (`openssl rand -base64 32`)", len(b), MinKeyBytes)
	}
	distinct := map[byte]bool{}
	for _, c := range b {
		distinct[c] = true
	}
	if len(distinct) < minDistinct {
		return Key{}, fmt.Errorf("has %d distinct byte values: not a random key (`openssl rand -base64 32`)", len(distinct))
	}
	return newKey(b), nil
}

func newKey(b []byte) Key {
	h := sha256.Sum256(append([]byte(keyIDLabel+"\x00"), b...))
	return Key{ID: hex.EncodeToString(h[:8]), secret: b}
}

func decodeKey(s string) ([]byte, error) {
	if len(s)%2 == 0 && isHex(s) {
		return hex.DecodeString(s)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	_, err := base64.StdEncoding.DecodeString(s)
	return nil, fmt.Errorf("base64: %w", err)
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// ParseKeys decodes a comma-separated list of keys (BACKUP_SIGNING_KEYS_OLD);
// empty elements are ignored.
func ParseKeys(s string) ([]Key, error) {
	var out []Key
	for i, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, err := ParseKey(part)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// Keyring holds the key that signs and the keys that still verify.
type Keyring struct {
	current *Key
	byID    map[string]Key
}

// NewKeyring returns a keyring signing with current (nil: verify only)
// and verifying with it and old.
func NewKeyring(current *Key, old ...Key) *Keyring {
	k := &Keyring{current: current, byID: map[string]Key{}}
	for _, o := range old {
		k.byID[o.ID] = o
	}
	if current != nil {
		k.byID[current.ID] = *current
	}
	return k
}

// KeyID is the id of the signing key, empty without one.
func (k *Keyring) KeyID() string {
	if k == nil || k.current == nil {
		return ""
	}
	return k.current.ID
}

// Signature is a parsed signature.
type Signature struct {
	KeyID          string
	ManifestSHA256 string
	MAC            string
}

// String encodes s as stored and sent (X-Archive-Signature).
func (s Signature) String() string {
	return Version + "." + s.KeyID + "." + s.ManifestSHA256 + "." + s.MAC
}

// Parse decodes a stored signature; a malformed one is ErrInvalid.
func Parse(s string) (Signature, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 4 || parts[0] != Version {
		return Signature{}, fmt.Errorf("%w: not a %s signature", ErrInvalid, Version)
	}
	sig := Signature{KeyID: parts[1], ManifestSHA256: parts[2], MAC: parts[3]}
	if !isLowerHex(sig.KeyID, 16) || !isLowerHex(sig.ManifestSHA256, 64) || !isLowerHex(sig.MAC, 64) {
		return Signature{}, fmt.Errorf("%w: malformed %s signature", ErrInvalid, Version)
	}
	return sig, nil
}

func isLowerHex(s string, n int) bool {
	return len(s) == n && isHex(s) && strings.ToLower(s) == s
}

// Sign returns the signature of the archive name whose stored bytes have
// SHA-256 archiveSHA256 and whose manifest has manifestSHA256 (hex).
func (k *Keyring) Sign(name, archiveSHA256, manifestSHA256 string) (Signature, error) {
	if k == nil || k.current == nil {
		return Signature{}, ErrNoKey
	}
	a, m := strings.ToLower(archiveSHA256), strings.ToLower(manifestSHA256)
	if !isLowerHex(a, 64) || !isLowerHex(m, 64) {
		return Signature{}, fmt.Errorf("sign %s: digests must be SHA-256 in hex", name)
	}
	return Signature{KeyID: k.current.ID, ManifestSHA256: m, MAC: mac(k.current.secret, name, a, m)}, nil
}

func mac(key []byte, name, archiveSHA256, manifestSHA256 string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(label + "\x00" + name + "\x00" + archiveSHA256 + "\x00" + manifestSHA256))
	return hex.EncodeToString(h.Sum(nil))
}

// Check verifies the stored signature sig of the archive name whose
// stored digest is archiveSHA256. No signature, or no digest, is
// ErrUnsigned; anything else that does not verify is ErrInvalid (a key
// id this keyring does not hold included). It returns the parsed
// signature, whose ManifestSHA256 the caller compares with the manifest
// it reads.
func (k *Keyring) Check(name, archiveSHA256, sig string) (Signature, error) {
	if strings.TrimSpace(sig) == "" {
		return Signature{}, fmt.Errorf("%s: %w", name, ErrUnsigned)
	}
	if archiveSHA256 == "" {
		return Signature{}, fmt.Errorf("%s: %w: its stored SHA-256 is missing", name, ErrUnsigned)
	}
	s, err := Parse(sig)
	if err != nil {
		return Signature{}, fmt.Errorf("%s: %w", name, err)
	}
	if k == nil {
		return s, fmt.Errorf("%s: %w: no key to check it with", name, ErrInvalid)
	}
	key, ok := k.byID[s.KeyID]
	if !ok {
		return s, fmt.Errorf("%s: %w: signed with key %s, which this deployment does not hold", name, ErrInvalid, s.KeyID)
	}
	want := mac(key.secret, name, strings.ToLower(archiveSHA256), s.ManifestSHA256)
	if !hmac.Equal([]byte(want), []byte(s.MAC)) {
		return s, fmt.Errorf("%s: %w: it does not match the archive's name and digest", name, ErrInvalid)
	}
	return s, nil
}

// Status is the signature status of a listed archive.
type Status string

// Statuses.
const (
	StatusValid    Status = "valid"
	StatusInvalid  Status = "invalid"
	StatusUnsigned Status = "unsigned"
	// StatusUnchecked: signed, but this process holds no key to check it.
	StatusUnchecked Status = "unchecked"
)

// StatusOf returns the status of a stored signature: what Check says, or
// StatusUnchecked for a signed archive when k is nil.
func (k *Keyring) StatusOf(name, archiveSHA256, sig string) Status {
	_, err := k.Check(name, archiveSHA256, sig)
	switch {
	case err == nil:
		return StatusValid
	case errors.Is(err, ErrUnsigned):
		return StatusUnsigned
	case k == nil:
		return StatusUnchecked
	}
	return StatusInvalid
}
