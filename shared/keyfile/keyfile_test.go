package keyfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestLoadOrCreate: processes starting at once agree on one secret, made
// once with mode 0600 and read back later; a short or readable-by-others
// file is an error naming it, never silently replaced.
func TestLoadOrCreate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "k.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	created := make([]bool, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, c, err := LoadOrCreate(path, 32)
			if err != nil {
				t.Error(err)
			}
			keys[i], created[i] = k, c
		}()
	}
	wg.Wait()
	n := 0
	for i := range keys {
		if !bytes.Equal(keys[i], keys[0]) || len(keys[i]) != 32 {
			t.Fatalf("racing creators disagree: %x vs %x", keys[i], keys[0])
		}
		if created[i] {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d creators say they created the key, want 1", n)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v (%v)", fi, err)
	}
	if again, c, err := LoadOrCreate(path, 32); err != nil || c || !bytes.Equal(again, keys[0]) {
		t.Errorf("read back: %x %v %v", again, c, err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(path, 32); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("group-readable key: %v", err)
	}
	short := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(short, []byte("abcd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(short, 32); err == nil || !strings.Contains(err.Error(), short) {
		t.Errorf("short key: %v", err)
	}
}
