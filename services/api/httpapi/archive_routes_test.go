package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
)

// archiveBytes makes a small valid archive (one JSONL file) and its name.
func archiveBytes(t *testing.T, created time.Time) (string, []byte) {
	t.Helper()
	id := jobs.NewID()
	var buf bytes.Buffer
	w, err := backupfmt.NewWriter(&buf, backupfmt.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddStream(context.Background(), "chroma", "chroma/sql.jsonl", backupfmt.KindJSONL, strings.NewReader(`{"id":"a"}`+"\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(backupfmt.Manifest{CreatedAt: created, JobID: id, AppVersion: "test", Note: "from elsewhere"}); err != nil {
		t.Fatal(err)
	}
	return backupfmt.ArchiveName(created, id, backupfmt.Gzip), buf.Bytes()
}

func octets() map[string]string {
	return map[string]string{"Content-Type": "application/octet-stream"}
}

func listed(t *testing.T, e *env) map[string]backupItem {
	t.Helper()
	l := decode[backupList](t, e.do(req{method: http.MethodGet, path: "/admin/db/backup/list", token: e.token(auth.Viewer)}))
	out := map[string]backupItem{}
	for _, b := range l.Backups {
		out[b.Filename] = b
	}
	return out
}

// TestArchiveImportAndDownload: an admin imports an archive from
// elsewhere (confirmed, checked whole, stored signed with this
// deployment's key, audited) and downloads it back byte for byte with its
// digest and signature; an invalid archive, an existing name, a name that
// does not match the manifest, a body past the cap and the wrong roles
// are refused with nothing listed.
func TestArchiveImportAndDownload(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, map[string]string{"BACKUP_IMPORT_MAX_MB": "1"})
	admin, op := e.token(auth.Admin), e.token(auth.Operator)
	created := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	name, raw := archiveBytes(t, created)
	sum := sha256.Sum256(raw)

	// Refusals first: nothing may be listed after any of them.
	if r := e.do(req{method: http.MethodPost, path: ArchiveImportPath, token: admin, body: raw, headers: octets()}); r.status != http.StatusBadRequest {
		t.Errorf("import without confirm: %d %s", r.status, r.body)
	} else if code, _ := errorOf(t, r); code != CodeConfirmationRequired {
		t.Errorf("import without confirm: code %s", code)
	}
	if r := e.do(req{method: http.MethodPost, path: ArchiveImportPath + "?confirm=true", token: op, body: raw, headers: octets()}); r.status != http.StatusForbidden {
		t.Errorf("import as operator: %d %s", r.status, r.body)
	}
	corrupt := bytes.Clone(raw)
	corrupt[len(corrupt)/2] ^= 0xff
	for what, body := range map[string][]byte{"corrupt": corrupt, "truncated": raw[:len(raw)-40], "not an archive": []byte("hello")} {
		r := e.do(req{method: http.MethodPost, path: ArchiveImportPath + "?confirm=true", token: admin, body: body, headers: octets()})
		if code, _ := errorOf(t, r); r.status != http.StatusUnprocessableEntity || code != CodeArchiveInvalid {
			t.Errorf("import %s: %d %s", what, r.status, r.body)
		}
	}
	other := backupfmt.ArchiveName(created, jobs.NewID(), backupfmt.Gzip)
	if r := e.do(req{method: http.MethodPost, path: ArchiveImportPath + "?confirm=true&name=" + other, token: admin, body: raw, headers: octets()}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("import under a name its manifest does not match: %d %s", r.status, r.body)
	}
	if r := e.do(req{method: http.MethodPost, path: ArchiveImportPath + "?confirm=true&name=../etc/passwd", token: admin, body: raw, headers: octets()}); r.status != http.StatusBadRequest {
		t.Errorf("import under an invalid name: %d %s", r.status, r.body)
	}
	big := bytes.Repeat([]byte{7}, 1<<20+1)
	for _, chunked := range []bool{false, true} {
		r := e.do(req{method: http.MethodPost, path: ArchiveImportPath + "?confirm=true", token: admin, body: big, headers: octets(), chunked: chunked})
		if r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("import past BACKUP_IMPORT_MAX_MB (chunked %v): %d %s", chunked, r.status, r.body)
		}
	}
	if r := e.do(req{method: http.MethodPost, path: ArchiveImportPath + "?confirm=true", token: admin, body: raw, headers: map[string]string{"Content-Type": "text/plain"}}); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("import as text/plain: %d %s", r.status, r.body)
	}
	if l := listed(t, e); len(l) != 0 {
		t.Fatalf("refused imports left archives listed: %v", l)
	}

	// The import.
	r := e.do(req{method: http.MethodPost, path: ArchiveImportPath + "?confirm=true", token: admin, body: raw, headers: octets()})
	if r.status != http.StatusCreated {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	item := decode[backupItem](t, r)
	if item.Filename != name || item.SHA256 != hex.EncodeToString(sum[:]) || item.SizeBytes != int64(len(raw)) ||
		!item.Signed || item.Signature != "valid" || item.SignatureKeyID != e.srv.keys.KeyID() || item.Note != "from elsewhere" || !item.Created.Equal(created) {
		t.Errorf("imported item %+v", item)
	}
	if got := listed(t, e)[name]; got.Signature != "valid" || !got.Signed {
		t.Errorf("listed %+v, want signed and valid", got)
	}
	if r := e.do(req{method: http.MethodPost, path: ArchiveImportPath + "?confirm=true", token: admin, body: raw, headers: octets()}); r.status != http.StatusConflict {
		t.Errorf("second import: %d %s", r.status, r.body)
	} else if code, _ := errorOf(t, r); code != CodeArchiveExists {
		t.Errorf("second import: code %s", code)
	}

	// The download.
	d := e.do(req{method: http.MethodGet, path: "/admin/db/backup/" + name + "/download", token: admin})
	if d.status != http.StatusOK || !bytes.Equal(d.body, raw) {
		t.Fatalf("download: %d, %d bytes (want %d)", d.status, len(d.body), len(raw))
	}
	if d.header.Get("Content-Type") != "application/octet-stream" || d.header.Get(HeaderArchiveSHA256) != item.SHA256 ||
		d.header.Get("Content-Disposition") != `attachment; filename="`+name+`"` || d.header.Get("Content-Length") == "" {
		t.Errorf("download headers %v", d.header)
	}
	sig := d.header.Get(HeaderArchiveSignature)
	if !strings.HasPrefix(sig, "v1."+item.SignatureKeyID+".") {
		t.Errorf("download signature %q", sig)
	}
	for _, p := range []string{"/admin/db/backup/" + other + "/download", "/admin/db/backup/..%2Fx/download", "/admin/db/backup/backup-x.tar.gz/download"} {
		if r := e.do(req{method: http.MethodGet, path: p, token: admin}); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d %s", p, r.status, r.body)
		}
	}
	if r := e.do(req{method: http.MethodGet, path: "/admin/db/backup/" + name + "/download", token: op}); r.status != http.StatusForbidden {
		t.Errorf("download as operator: %d", r.status)
	}

	// Back in with the signature it had here: the source signature is valid.
	st, err := e.srv.backupStore(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	h := octets()
	h[HeaderArchiveSignature] = sig
	if r := e.do(req{method: http.MethodPost, path: ArchiveImportPath + "?confirm=true&name=" + name, token: admin, body: raw, headers: h}); r.status != http.StatusCreated {
		t.Fatalf("re-import: %d %s", r.status, r.body)
	}

	evs, _ := e.auditEvents("audit.backup.>")
	var imports, refused, downloads int
	for _, ev := range evs {
		switch {
		case ev.Action == "backup.import" && ev.Outcome == "success":
			imports++
			if ev.Detail["archive"] != name || ev.Detail["sha256"] != item.SHA256 || ev.Actor != testUsers[auth.Admin] {
				t.Errorf("import event %+v", ev)
			}
			if want := map[int]string{1: "unsigned", 2: "valid"}[imports]; ev.Detail["source_signature"] != want {
				t.Errorf("import %d: source_signature %v, want %s", imports, ev.Detail["source_signature"], want)
			}
		case ev.Action == "backup.import":
			refused++
		case ev.Action == "backup.download":
			downloads++
		}
	}
	if imports != 2 || refused < 5 || downloads != 1 {
		t.Errorf("audited %d imports, %d refused, %d downloads: %+v", imports, refused, downloads, evs)
	}
}

// TestListShowsSignatureStatus: an archive planted without a signature is
// listed unsigned, one whose signature was made with another key invalid.
func TestListShowsSignatureStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	unsigned, st := putArchive(t, e, time.Now().UTC().Add(-time.Hour).Truncate(time.Second))
	name, raw := archiveBytes(t, time.Now().UTC().Add(-2*time.Hour).Truncate(time.Second))
	forged := "v1.0123456789abcdef." + strings.Repeat("a", 64) + "." + strings.Repeat("b", 64)
	if _, err := st.Put(context.Background(), name, bytes.NewReader(raw), backupstore.WithSeal(func(string) (string, error) { return forged, nil })); err != nil {
		t.Fatal(err)
	}
	l := listed(t, e)
	if it := l[unsigned]; it.Signed || it.Signature != "unsigned" {
		t.Errorf("planted unsigned archive listed %+v", it)
	}
	if it := l[name]; !it.Signed || it.Signature != "invalid" || it.SignatureKeyID != "0123456789abcdef" {
		t.Errorf("archive signed with another key listed %+v", it)
	}
}
