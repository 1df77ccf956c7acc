package httpapi

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/insightops/insightops/shared/auth"
)

// TestArchiveImportRefusesEncryptedArchives: imports take plaintext
// archives only: an encrypted archive's name is 400, an age-encrypted body
// 422 archive_invalid saying so; nothing is listed.
func TestArchiveImportRefusesEncryptedArchives(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil)
	admin := e.token(auth.Admin)
	name, raw := archiveBytes(t, time.Now().UTC().Truncate(time.Second).Add(-time.Hour))

	r := e.do(req{method: http.MethodPost, path: ArchiveImportPath + "?confirm=true&name=" + name + ".age", token: admin, body: raw, headers: octets()})
	if code, msg := errorOf(t, r); r.status != http.StatusBadRequest || !strings.Contains(msg, "imports take plaintext archives only") {
		t.Errorf("import under a .age name: %d %s %s", r.status, code, msg)
	}

	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var ct bytes.Buffer
	w, err := age.Encrypt(&ct, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r = e.do(req{method: http.MethodPost, path: ArchiveImportPath + "?confirm=true", token: admin, body: ct.Bytes(), headers: octets()})
	if code, msg := errorOf(t, r); r.status != http.StatusUnprocessableEntity || code != CodeArchiveInvalid || !strings.Contains(msg, "age-encrypted") {
		t.Errorf("import of an age-encrypted body: %d %s %s", r.status, code, msg)
	}
	if l := listed(t, e); len(l) != 0 {
		t.Fatalf("refused imports left archives listed: %v", l)
	}
}
