package backupcrypt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
)

func keyPair(t *testing.T) (*age.X25519Identity, string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id, id.Recipient().String()
}

func identityFile(t *testing.T, ids ...*age.X25519Identity) *Identities {
	t.Helper()
	var b bytes.Buffer
	for _, id := range ids {
		b.WriteString(id.String() + "\n")
	}
	p := filepath.Join(t.TempDir(), "identity.txt")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadIdentities(p)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestEncryptDecrypt: a stream encrypted to two recipients decrypts with
// either identity; a third identity gets ErrNoMatch; a flipped byte of the
// ciphertext fails the read.
func TestEncryptDecrypt(t *testing.T) {
	a, pa := keyPair(t)
	b, pb := keyPair(t)
	c, _ := keyPair(t)
	r, err := ParseRecipients(pa + " , " + pb)
	if err != nil {
		t.Fatal(err)
	}
	plain := bytes.Repeat([]byte("compressed archive bytes "), 10000) // several 64 KiB chunks
	var ct bytes.Buffer
	w, err := r.Encrypt(&ct)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct.Bytes(), []byte("compressed archive")) {
		t.Fatal("the ciphertext holds the plaintext")
	}
	for _, id := range []*age.X25519Identity{a, b} {
		pr, err := identityFile(t, id).Decrypt(bytes.NewReader(ct.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(pr)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("decrypted %d bytes, %v", len(got), err)
		}
	}
	if _, err := identityFile(t, c).Decrypt(bytes.NewReader(ct.Bytes())); !errors.Is(err, ErrNoMatch) {
		t.Fatalf("a third identity: %v, want ErrNoMatch", err)
	}
	bad := bytes.Clone(ct.Bytes())
	bad[len(bad)-100] ^= 1
	pr, err := identityFile(t, a).Decrypt(bytes.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(pr); err == nil {
		t.Fatal("a flipped ciphertext byte decrypted")
	}
	if fp := r.Fingerprints(); len(fp) != 2 || fp[0] != Fingerprint(pa) {
		t.Fatalf("fingerprints %v", fp)
	}
}

// TestFingerprint is sha256: and the first 16 hex digits of sha256sum.
func TestFingerprint(t *testing.T) {
	const rec = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	sum := sha256.Sum256([]byte(rec))
	if got, want := Fingerprint(rec), "sha256:"+hex.EncodeToString(sum[:])[:16]; got != want {
		t.Fatalf("Fingerprint = %s, want %s", got, want)
	}
	if r, err := ParseRecipients(""); r != nil || err != nil {
		t.Fatalf("empty: %v %v", r, err)
	}
	if ids, err := LoadIdentities(""); ids != nil || err != nil {
		t.Fatalf("empty: %v %v", ids, err)
	}
}
