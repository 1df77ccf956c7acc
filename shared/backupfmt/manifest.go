package backupfmt

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FormatVersion is the manifest format this package writes and the only one
// it reads.
const FormatVersion = 1

// ManifestName is the tar entry holding the manifest: the last entry.
const ManifestName = "manifest.json"

// MaxManifestSize bounds the manifest entry a reader accepts.
const MaxManifestSize = 16 << 20

// The components of an archive, also the top-level directories of its files.
const (
	ComponentSystem = "system"
	ComponentTarget = "target"
	ComponentChroma = "chroma"
)

// Components lists every component, in archive order.
var Components = []string{ComponentSystem, ComponentTarget, ComponentChroma}

// Component statuses.
const (
	StatusIncluded = "included"
	StatusSkipped  = "skipped"
)

// File kinds. The kind of a file follows from its extension (see KindOf); the
// manifest records it, and Verify picks the checker by it.
const (
	KindPGDump = "pg_dump" // .dump: pg_dump custom format
	KindSQLite = "sqlite"  // .db, .sqlite, .sqlite3
	KindJSONL  = "jsonl"   // .jsonl: one JSON object per line, each with an "id"
	KindJSON   = "json"    // .json
)

// CountUnknown is the Count of a file whose rows or records were not counted.
const CountUnknown int64 = -1

// Manifest describes an archive; it is the tar entry manifest.json.
type Manifest struct {
	FormatVersion int                  `json:"format_version"`
	CreatedAt     time.Time            `json:"created_at"`
	JobID         string               `json:"job_id"`
	AppVersion    string               `json:"app_version"`
	Note          string               `json:"note,omitempty"`
	Compression   Compression          `json:"compression"`
	Components    map[string]Component `json:"components"`
}

// Component is what the archive holds of one store.
type Component struct {
	Status string `json:"status"`           // StatusIncluded or StatusSkipped
	Reason string `json:"reason,omitempty"` // why it was skipped
	// Source describes where the data came from (e.g. "postgresql 16.4 on
	// db:5432/insight", "sqlite data/target/vanna_db.db"), never credentials:
	// a URL with a password is refused.
	Source string `json:"source,omitempty"`
	Files  []File `json:"files"`
	// Meta is free-form detail: per-table counts, collection configurations, tool versions.
	Meta map[string]any `json:"meta,omitempty"`
}

// File is one logical file of the archive. A file longer than the writer's
// chunk size is stored as consecutive tar entries <path>.part-000001, …,
// listed in Parts; Size and SHA256 are those of the whole (concatenated) content.
type File struct {
	Path   string `json:"path"` // <component>/<name>, relative, clean
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lower-case hex
	Count  int64  `json:"count"`  // rows or records; CountUnknown (-1) if not counted
	Kind   string `json:"kind"`
	Parts  []Part `json:"parts,omitempty"`
}

// Component returns the component of the file: the first element of its path.
func (f File) Component() string {
	c, _, _ := strings.Cut(f.Path, "/")
	return c
}

// Entries returns the tar entry names holding the file, in order.
func (f File) Entries() []string {
	if len(f.Parts) == 0 {
		return []string{f.Path}
	}
	names := make([]string, len(f.Parts))
	for i, p := range f.Parts {
		names[i] = p.Path
	}
	return names
}

// Part is one tar entry of a file split into parts.
type Part struct {
	Path   string `json:"path"` // <file path>.part-NNNNNN, from 000001
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// PartPath is the tar entry name of part i (from 1) of the file at p.
func PartPath(p string, i int) string { return fmt.Sprintf("%s.part-%06d", p, i) }

const partMarker = ".part-"

// splitPart reports whether name is a part entry name and returns the
// logical path and part number.
func splitPart(name string) (string, int, bool) {
	i := strings.LastIndex(name, partMarker)
	if i < 0 {
		return "", 0, false
	}
	digits := name[i+len(partMarker):]
	if len(digits) != 6 {
		return "", 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 || digits[0] == '+' || digits[0] == '-' {
		return "", 0, false
	}
	return name[:i], n, true
}

// Files returns every file of the manifest, component by component in the
// order of Components, each component's files in archive order.
func (m Manifest) Files() []File {
	var out []File
	for _, c := range Components {
		out = append(out, m.Components[c].Files...)
	}
	return out
}

// Included returns the names of the included components, in the order of Components.
func (m Manifest) Included() []string {
	var out []string
	for _, c := range Components {
		if m.Components[c].Status == StatusIncluded {
			out = append(out, c)
		}
	}
	return out
}

// ParseManifest reads a manifest strictly: unknown fields, trailing data, a
// format version other than FormatVersion, and any invalid path, hash,
// status or count are errors.
func ParseManifest(r io.Reader) (Manifest, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxManifestSize+1))
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest: %w", err)
	}
	if len(data) > MaxManifestSize {
		return Manifest{}, fmt.Errorf("manifest: larger than %d bytes", MaxManifestSize)
	}
	// Peek at the version first, so a newer format is reported as such
	// rather than as an unknown field.
	var v struct {
		FormatVersion *int `json:"format_version"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return Manifest{}, fmt.Errorf("manifest: %w", err)
	}
	if v.FormatVersion == nil {
		return Manifest{}, errors.New("manifest: format_version missing")
	}
	if *v.FormatVersion != FormatVersion {
		return Manifest{}, fmt.Errorf("manifest: format_version %d is not supported (this program reads version %d)", *v.FormatVersion, FormatVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("manifest: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Manifest{}, errors.New("manifest: trailing data after the JSON object")
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// Marshal encodes the manifest as written into archives (indented JSON).
func (m Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// Validate checks everything ParseManifest checks after decoding.
func (m Manifest) Validate() error {
	if m.FormatVersion != FormatVersion {
		return fmt.Errorf("manifest: format_version %d is not supported (this program reads version %d)", m.FormatVersion, FormatVersion)
	}
	if m.CreatedAt.IsZero() {
		return errors.New("manifest: created_at missing")
	}
	if !ValidJobID(m.JobID) {
		return fmt.Errorf("manifest: job_id %q is not a canonical ULID", truncate(m.JobID, 40))
	}
	if _, err := ParseCompression(string(m.Compression)); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if len(m.Note) > 4096 || len(m.AppVersion) > 256 {
		return errors.New("manifest: note or app_version too long")
	}
	for name := range m.Components {
		if !isComponent(name) {
			return fmt.Errorf("manifest: unknown component %q (accepted: system, target, chroma)", truncate(name, 40))
		}
	}
	seen := map[string]bool{}
	for _, name := range Components {
		c, ok := m.Components[name]
		if !ok {
			return fmt.Errorf("manifest: component %s missing", name)
		}
		if err := c.validate(name, seen); err != nil {
			return fmt.Errorf("manifest: component %s: %w", name, err)
		}
	}
	return nil
}

func isComponent(name string) bool {
	return slices.Contains(Components, name)
}

func (c Component) validate(name string, seen map[string]bool) error {
	switch c.Status {
	case StatusIncluded:
		if len(c.Files) == 0 {
			return errors.New("included but lists no files")
		}
	case StatusSkipped:
		if len(c.Files) != 0 {
			return errors.New("skipped but lists files")
		}
		if c.Reason == "" {
			return errors.New("skipped without a reason")
		}
	default:
		return fmt.Errorf("status %q: accepted values: included, skipped", truncate(c.Status, 40))
	}
	if err := checkNoCredentials(c.Source); err != nil {
		return err
	}
	for _, f := range c.Files {
		if err := f.validate(name); err != nil {
			return err
		}
		names := []string{f.Path}
		if len(f.Parts) > 0 {
			names = append(names, f.Entries()...)
		}
		for _, e := range names {
			if seen[e] {
				return fmt.Errorf("%s: listed twice", e)
			}
			seen[e] = true
		}
	}
	return nil
}

func (f File) validate(component string) error {
	if err := ValidatePath(f.Path); err != nil {
		return err
	}
	if f.Component() != component {
		return fmt.Errorf("%s: not under the component directory %s/", f.Path, component)
	}
	if f.Size < 0 {
		return fmt.Errorf("%s: negative size", f.Path)
	}
	if !validSHA256(f.SHA256) {
		return fmt.Errorf("%s: sha256 is not 64 lower-case hex digits", f.Path)
	}
	if f.Count < CountUnknown {
		return fmt.Errorf("%s: count %d (use -1 for not counted)", f.Path, f.Count)
	}
	if want := KindOf(f.Path); f.Kind != want {
		return fmt.Errorf("%s: kind %q, its extension says %q", f.Path, truncate(f.Kind, 40), want)
	}
	if len(f.Parts) == 1 {
		return fmt.Errorf("%s: a single part (a file is either one entry or at least two parts)", f.Path)
	}
	var total int64
	for i, p := range f.Parts {
		if want := PartPath(f.Path, i+1); p.Path != want {
			return fmt.Errorf("%s: part %d is named %q, expected %q", f.Path, i+1, truncate(p.Path, 120), want)
		}
		if p.Size <= 0 {
			return fmt.Errorf("%s: size %d", p.Path, p.Size)
		}
		if !validSHA256(p.SHA256) {
			return fmt.Errorf("%s: sha256 is not 64 lower-case hex digits", p.Path)
		}
		total += p.Size
	}
	if len(f.Parts) > 0 && total != f.Size {
		return fmt.Errorf("%s: parts add up to %d bytes, file size is %d", f.Path, total, f.Size)
	}
	return nil
}

// ValidatePath checks the path of a file in an archive:
// <component>/<name>[/<name>…], relative and clean, every element made of
// letters, digits and . _ - + = @ , and not starting with a dot (so no "."
// or ".."), at most 255 bytes, and not ending like a part entry (.part-NNNNNN).
func ValidatePath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if len(p) > 255 {
		return fmt.Errorf("%q: path longer than 255 bytes", truncate(p, 80))
	}
	if path.Clean(p) != p || strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q: not a clean relative path", truncate(p, 80))
	}
	elems := strings.Split(p, "/")
	if len(elems) < 2 {
		return fmt.Errorf("%q: not under a component directory", truncate(p, 80))
	}
	for _, e := range elems {
		if e == "" || e[0] == '.' {
			return fmt.Errorf("%q: empty element, or an element starting with a dot (\".\", \"..\", hidden files)", truncate(p, 80))
		}
		for i := range len(e) {
			if !pathChar(e[i]) {
				return fmt.Errorf("%q: character %q not allowed", truncate(p, 80), e[i])
			}
		}
	}
	if !isComponent(elems[0]) {
		return fmt.Errorf("%q: %q is not a component (system, target, chroma)", truncate(p, 80), truncate(elems[0], 40))
	}
	if _, _, ok := splitPart(p); ok {
		return fmt.Errorf("%q: a file path cannot end like a part (.part-NNNNNN)", truncate(p, 80))
	}
	return nil
}

func pathChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("._-+=@,", c) >= 0
}

// KindOf returns the kind a file path implies: pg_dump (.dump), sqlite
// (.db, .sqlite, .sqlite3), jsonl (.jsonl), json (.json), otherwise the
// extension without its dot, or "file" without an extension.
func KindOf(p string) string {
	ext := strings.ToLower(path.Ext(p))
	switch ext {
	case ".dump":
		return KindPGDump
	case ".db", ".sqlite", ".sqlite3":
		return KindSQLite
	case ".jsonl":
		return KindJSONL
	case ".json":
		return KindJSON
	case "", ".":
		return "file"
	}
	return ext[1:]
}

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// checkNoCredentials refuses a source description holding a URL with a password.
func checkNoCredentials(s string) error {
	for tok := range strings.FieldsSeq(s) {
		if !strings.Contains(tok, "://") {
			continue
		}
		u, err := url.Parse(strings.Trim(tok, "()<>\"',;"))
		if err != nil {
			continue
		}
		if _, has := u.User.Password(); has {
			return errors.New("source holds a URL with a password; describe the source without credentials")
		}
	}
	return nil
}
