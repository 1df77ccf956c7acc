package backupfmt

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insightops/insightops/shared/testkit"
)

// The archives open with the standard tools: gzip/zstd -t, tar -t and tar -x.
func TestStandardTools(t *testing.T) {
	for _, tool := range []string{"tar", "gzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: %v", tool, err)
		}
	}
	_, zstdErr := exec.LookPath("zstd")
	inputs := roundTripCases()["multi-part stream"]
	inputs = append(inputs, input{path: "target/vanna_db.db", data: compressible(8, 2*testChunk+7)})
	for _, c := range []Compression{Gzip, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			if c == Zstd && zstdErr != nil {
				testkit.Unavailable(t, "zstd (apt-get install -y zstd)", zstdErr)
			}
			archive, res := build(t, c, testChunk, inputs)
			dir := t.TempDir()
			file := filepath.Join(dir, ArchiveName(testCreated, testJobID, c))
			if err := os.WriteFile(file, archive, 0o600); err != nil {
				t.Fatal(err)
			}
			decomp := []string{"gzip", "-t", file}
			tarFlag := "-z"
			if c == Zstd {
				decomp = []string{"zstd", "-t", "-q", file}
				tarFlag = "--zstd"
			}
			run(t, decomp...)
			list := run(t, "tar", tarFlag, "-tf", file)
			names := strings.Fields(list)
			if strings.Join(names, ",") != strings.Join(tarNames(t, archive), ",") || names[len(names)-1] != ManifestName {
				t.Fatalf("tar -t lists %v", names)
			}
			out := filepath.Join(dir, "x")
			os.Mkdir(out, 0o700)
			run(t, "tar", tarFlag, "-xf", file, "-C", out)
			// Joining the parts with cat gives the file back.
			for _, f := range res.Manifest.Files() {
				var got []byte
				for _, e := range f.Entries() {
					b, err := os.ReadFile(filepath.Join(out, e))
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, b...)
				}
				for _, in := range inputs {
					if in.path == f.Path && !bytes.Equal(got, in.data) {
						t.Errorf("%s: tar -x content differs", f.Path)
					}
				}
			}
			if m, err := os.ReadFile(filepath.Join(out, ManifestName)); err != nil || !bytes.Contains(m, []byte(`"format_version": 1`)) {
				t.Fatalf("manifest.json from tar -x: %v %s", err, m)
			}
		})
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
