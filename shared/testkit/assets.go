package testkit

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// DemoDBCopy copies the shipped demo target database
// (assets/databases/vanna_db.db) to name inside a fresh temp dir and
// returns its path, so a test can change or watch it without touching the
// repository's file.
func DemoDBCopy(t testing.TB, name string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), name)
	CopyFile(t, filepath.Join(root, "assets", "databases", "vanna_db.db"), dst)
	return dst
}

// CopyFile copies src to dst (creating dst's directory), failing the test
// on any error.
func CopyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatalf("open %s: %v", src, err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatalf("copy %s → %s: %v", src, dst, err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
