package backupfmt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// validManifestJSON is a manifest as the writer produces it.
func validManifestJSON(t testing.TB) []byte {
	t.Helper()
	_, res := build(t, Gzip, testChunk, roundTripCases()["multi-part stream"])
	b, err := res.Manifest.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseManifestValid(t *testing.T) {
	data := validManifestJSON(t)
	m, err := ParseManifest(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, data)
	}
	if m.FormatVersion != FormatVersion || m.JobID != testJobID || m.Compression != Gzip || !m.CreatedAt.Equal(testCreated) {
		t.Fatalf("parsed %+v", m)
	}
	if got := strings.Join(m.Included(), ","); got != "system,chroma" {
		t.Fatalf("included %s", got)
	}
	if m.Components[ComponentTarget].Status != StatusSkipped || m.Components[ComponentTarget].Reason == "" {
		t.Fatalf("target: %+v", m.Components[ComponentTarget])
	}
	f := m.Components[ComponentSystem].Files[0]
	if f.Path != "system/system.dump" || f.Kind != KindPGDump || len(f.Parts) != 6 || f.Count != 99 {
		t.Fatalf("system file %+v", f)
	}
	if f.Component() != ComponentSystem || len(f.Entries()) != 6 {
		t.Fatalf("helpers: %s %v", f.Component(), f.Entries())
	}
}

// mutate decodes the valid manifest into generic JSON, applies fn, encodes.
func mutate(t *testing.T, fn func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(validManifestJSON(t), &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sysFile(m map[string]any) map[string]any {
	return m["components"].(map[string]any)["system"].(map[string]any)["files"].([]any)[0].(map[string]any)
}

func chromaFile(m map[string]any) map[string]any {
	return m["components"].(map[string]any)["chroma"].(map[string]any)["files"].([]any)[0].(map[string]any)
}

func TestParseManifestRejects(t *testing.T) {
	cases := map[string]func(m map[string]any){
		"unknown top-level field": func(m map[string]any) { m["extra"] = 1 },
		"unknown file field":      func(m map[string]any) { sysFile(m)["mode"] = "0777" },
		"format version 2":        func(m map[string]any) { m["format_version"] = 2 },
		"format version 0":        func(m map[string]any) { m["format_version"] = 0 },
		"format version missing":  func(m map[string]any) { delete(m, "format_version") },
		"created_at missing":      func(m map[string]any) { delete(m, "created_at") },
		"bad job id":              func(m map[string]any) { m["job_id"] = "not-a-ulid" },
		"lower-case job id":       func(m map[string]any) { m["job_id"] = strings.ToLower(testJobID) },
		"compression xz":          func(m map[string]any) { m["compression"] = "xz" },
		"unknown component": func(m map[string]any) {
			m["components"].(map[string]any)["etc"] = map[string]any{"status": "skipped", "reason": "x", "files": []any{}}
		},
		"component missing": func(m map[string]any) { delete(m["components"].(map[string]any), "target") },
		"bad status": func(m map[string]any) {
			m["components"].(map[string]any)["target"].(map[string]any)["status"] = "partial"
		},
		"skipped without reason": func(m map[string]any) { m["components"].(map[string]any)["target"].(map[string]any)["reason"] = "" },
		"skipped with files": func(m map[string]any) {
			m["components"].(map[string]any)["target"].(map[string]any)["files"] = []any{map[string]any{"path": "target/x.db", "size": 0, "sha256": strings.Repeat("0", 64), "count": -1, "kind": "sqlite"}}
		},
		"included without files": func(m map[string]any) {
			c := m["components"].(map[string]any)["chroma"].(map[string]any)
			c["files"] = []any{}
		},
		"credentials in source": func(m map[string]any) {
			m["components"].(map[string]any)["system"].(map[string]any)["source"] = "postgresql postgres://app:hunter2@db:5432/insight"
		},
		"path with dotdot":           func(m map[string]any) { chromaFile(m)["path"] = "chroma/../../etc/passwd.jsonl" },
		"absolute path":              func(m map[string]any) { chromaFile(m)["path"] = "/chroma/ddl.jsonl" },
		"path under other component": func(m map[string]any) { chromaFile(m)["path"] = "system/ddl.jsonl" },
		"path not clean":             func(m map[string]any) { chromaFile(m)["path"] = "chroma//ddl.jsonl" },
		"path with NUL":              func(m map[string]any) { chromaFile(m)["path"] = "chroma/ddl\x00.jsonl" },
		"path with space":            func(m map[string]any) { chromaFile(m)["path"] = "chroma/d dl.jsonl" },
		"hidden file":                func(m map[string]any) { chromaFile(m)["path"] = "chroma/.ddl.jsonl" },
		"component dir only":         func(m map[string]any) { chromaFile(m)["path"] = "chroma" },
		"path like a part":           func(m map[string]any) { chromaFile(m)["path"] = "chroma/ddl.jsonl.part-000001" },
		"kind disagrees":             func(m map[string]any) { chromaFile(m)["kind"] = "sqlite" },
		"bad sha256":                 func(m map[string]any) { chromaFile(m)["sha256"] = "abc" },
		"upper-case sha256":          func(m map[string]any) { chromaFile(m)["sha256"] = strings.ToUpper(chromaFile(m)["sha256"].(string)) },
		"negative size":              func(m map[string]any) { chromaFile(m)["size"] = -5 },
		"count below -1":             func(m map[string]any) { chromaFile(m)["count"] = -2 },
		"duplicate file": func(m map[string]any) {
			c := m["components"].(map[string]any)["chroma"].(map[string]any)
			c["files"] = append(c["files"].([]any), c["files"].([]any)[0])
		},
		"single part": func(m map[string]any) {
			f := sysFile(m)
			parts := f["parts"].([]any)
			f["parts"] = parts[:1]
		},
		"parts misnamed": func(m map[string]any) {
			sysFile(m)["parts"].([]any)[1].(map[string]any)["path"] = "system/system.dump.part-000009"
		},
		"parts do not add up": func(m map[string]any) { sysFile(m)["size"] = 1 },
		"empty part": func(m map[string]any) {
			sysFile(m)["parts"].([]any)[1].(map[string]any)["size"] = 0
		},
	}
	// want is what each refusal says (the field and the rule it breaks).
	want := map[string]string{
		"count below -1":             "count -2 (use -1 for not counted)",
		"bad job id":                 "job_id \"not-a-ulid\" is not a canonical ULID",
		"path with NUL":              "character '\\x00' not allowed",
		"path like a part":           "cannot end like a part",
		"duplicate file":             "chroma/ddl.jsonl: listed twice",
		"included without files":     "component chroma: included but lists no files",
		"path with space":            "character ' ' not allowed",
		"kind disagrees":             "kind \"sqlite\", its extension says \"jsonl\"",
		"upper-case sha256":          "sha256 is not 64 lower-case hex digits",
		"unknown component":          "unknown component \"etc\"",
		"skipped with files":         "component target: skipped but lists files",
		"path with dotdot":           "not a clean relative path",
		"path under other component": "not under the component directory chroma/",
		"negative size":              "chroma/ddl.jsonl: negative size",
		"unknown file field":         "unknown field \"mode\"",
		"lower-case job id":          "is not a canonical ULID",
		"credentials in source":      "source holds a URL with a password",
		"component dir only":         "not under a component directory",
		"parts misnamed":             "expected \"system/system.dump.part-000002\"",
		"format version 0":           "format_version 0 is not supported",
		"created_at missing":         "created_at missing",
		"bad status":                 "status \"partial\": accepted values: included, skipped",
		"hidden file":                "an element starting with a dot",
		"bad sha256":                 "sha256 is not 64 lower-case hex digits",
		"parts do not add up":        "parts add up to 5123 bytes, file size is 1",
		"empty part":                 "system/system.dump.part-000002: size 0",
		"compression xz":             "compression \"xz\": accepted values: gzip, zstd",
		"format version missing":     "format_version missing",
		"component missing":          "component target missing",
		"single part":                "a single part",
		"unknown top-level field":    "unknown field \"extra\"",
		"format version 2":           "format_version 2 is not supported",
		"skipped without reason":     "skipped without a reason",
		"absolute path":              "not a clean relative path",
		"path not clean":             "not a clean relative path",
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			data := mutate(t, fn)
			m, err := ParseManifest(bytes.NewReader(data))
			if err == nil {
				t.Fatalf("accepted: %+v", m)
			}
			if w, ok := want[name]; !ok || !strings.Contains(err.Error(), w) {
				t.Fatalf("refused with %q, want it to say %q", err, w)
			}
		})
	}
	raw := validManifestJSON(t)
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"trailing data":  {append(bytes.Clone(raw), []byte("{}")...), "after top-level value"},
		"two objects":    {append(bytes.Clone(raw), raw...), "after top-level value"},
		"not an object":  {[]byte(`[1,2,3]`), "cannot unmarshal array"},
		"empty":          {nil, "unexpected end of JSON input"},
		"null":           {[]byte("null"), "format_version missing"},
		"truncated":      {raw[:len(raw)/2], "unexpected end of JSON input"},
		"huge":           {append([]byte(`{"format_version":1,"note":"`), bytes.Repeat([]byte("x"), MaxManifestSize)...), fmt.Sprintf("larger than %d bytes", MaxManifestSize)},
		"version string": {[]byte(`{"format_version":"1"}`), "cannot unmarshal string"},
	} {
		if _, err := ParseManifest(bytes.NewReader(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to say %q", name, err, tc.want)
		}
	}
	// A newer format is reported as such.
	_, err := ParseManifest(bytes.NewReader(mutate(t, func(m map[string]any) { m["format_version"] = 2; m["new_field"] = true })))
	if err == nil || !strings.Contains(err.Error(), "format_version 2 is not supported") {
		t.Errorf("newer format: %v", err)
	}
}

func TestKindOf(t *testing.T) {
	for p, want := range map[string]string{
		"system/system.dump":      KindPGDump,
		"system/system.db":        KindSQLite,
		"target/vanna_db.db":      KindSQLite,
		"target/x.SQLITE3":        KindSQLite,
		"chroma/sql.jsonl":        KindJSONL,
		"chroma/collections.json": KindJSON,
		"chroma/notes.csv":        "csv",
		"chroma/README":           "file",
	} {
		if got := KindOf(p); got != want {
			t.Errorf("KindOf(%s) = %s, want %s", p, got, want)
		}
	}
}
