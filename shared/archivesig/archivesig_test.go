package archivesig

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func randomKey(t *testing.T) Key {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	k, err := ParseKey(base64.StdEncoding.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	name = "backup-20261204T101500Z-01JD5ZQ8W3K9V4T7X2M6N1P0RS.tar.gz"
	sumA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	sumB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// TestSignCheck: a signature verifies for its name and digest only, with
// the current or an old key, and not with another key or a forged MAC.
func TestSignCheck(t *testing.T) {
	cur, old, other := randomKey(t), randomKey(t), randomKey(t)
	oldRing := NewKeyring(&old)
	ring := NewKeyring(&cur, old)
	sig, err := ring.Sign(name, sumA, sumB)
	if err != nil {
		t.Fatal(err)
	}
	s := sig.String()
	if !strings.HasPrefix(s, "v1."+cur.ID+"."+sumB+".") || len(s) != 2+1+16+1+64+1+64 {
		t.Fatalf("signature %q", s)
	}
	if got, err := ring.Check(name, sumA, s); err != nil || got != sig {
		t.Fatalf("check = %+v, %v", got, err)
	}
	oldSig, _ := oldRing.Sign(name, sumA, sumB)
	if _, err := ring.Check(name, sumA, oldSig.String()); err != nil {
		t.Errorf("an old key's signature: %v", err)
	}
	forged := s[:len(s)-1] + map[bool]string{true: "1", false: "0"}[s[len(s)-1] == '0']
	for what, c := range map[string]struct {
		ring           *Keyring
		name, sum, sig string
		want           error
	}{
		"other name":    {ring, strings.Replace(name, "2026", "2025", 1), sumA, s, ErrInvalid},
		"other digest":  {ring, name, sumB, s, ErrInvalid},
		"other key":     {NewKeyring(&other), name, sumA, s, ErrInvalid},
		"forged mac":    {ring, name, sumA, forged, ErrInvalid},
		"malformed":     {ring, name, sumA, "v1.zz", ErrInvalid},
		"v2":            {ring, name, sumA, "v2" + s[2:], ErrInvalid},
		"no signature":  {ring, name, sumA, "", ErrUnsigned},
		"no digest":     {ring, name, "", s, ErrUnsigned},
		"no key at all": {nil, name, sumA, s, ErrInvalid},
	} {
		if _, err := c.ring.Check(c.name, c.sum, c.sig); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", what, err, c.want)
		}
	}
	if st := (*Keyring)(nil).StatusOf(name, sumA, s); st != StatusUnchecked {
		t.Errorf("status without a key: %s", st)
	}
	if st := ring.StatusOf(name, sumA, ""); st != StatusUnsigned {
		t.Errorf("status unsigned: %s", st)
	}
	if _, err := NewKeyring(nil, old).Sign(name, sumA, sumB); !errors.Is(err, ErrNoKey) {
		t.Errorf("sign with a verify-only keyring: %v", err)
	}
}

// TestParseKey: hex and base64 of 32 random bytes are accepted; short,
// typed or undecodable values are refused.
func TestParseKey(t *testing.T) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)} {
		if k, err := ParseKey(s); err != nil || len(k.ID) != 16 {
			t.Errorf("ParseKey(%q) = %+v, %v", s, k, err)
		}
	}
	for _, s := range []string{"", "change-me", hex.EncodeToString(b[:16]), strings.Repeat("ab", 40), "local-trial-backup-key-change-me-0123456789-abcdef!"} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		}
	}
	if _, err := ParseKeys("," + hex.EncodeToString(b) + ", short"); err == nil {
		t.Error("ParseKeys accepted a short key")
	}
}

// TestLoad: production refuses to run without a key; development creates
// one key file (0600) and reads the same key back; a configured key wins.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := Load(Settings{DataDir: dir, Production: true}); !errors.Is(err, ErrKeyRequired) {
		t.Errorf("production without a key: %v", err)
	}
	k1, gen1, err := Load(Settings{DataDir: dir})
	if err != nil || !gen1 {
		t.Fatalf("first development load: %v %v", gen1, err)
	}
	fi, err := os.Stat(filepath.Join(dir, DevKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", fi, err)
	}
	k2, gen2, err := Load(Settings{DataDir: dir})
	if err != nil || gen2 || k2.KeyID() != k1.KeyID() {
		t.Fatalf("second load: %s vs %s, generated %v, %v", k2.KeyID(), k1.KeyID(), gen2, err)
	}
	if err := os.Chmod(filepath.Join(dir, DevKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(Settings{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("a world-readable key file: %v", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	k3, _, err := Load(Settings{Key: hex.EncodeToString(b), DataDir: dir, Production: true})
	if err != nil || k3.KeyID() != newKey(b).ID {
		t.Errorf("configured key: %v %v", k3.KeyID(), err)
	}
}
