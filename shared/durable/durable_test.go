package durable

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestSyncDirSyncsADirectoryAndNamesAMissingOne(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	if err := SyncDir(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing dir: %v", err)
	}
}
