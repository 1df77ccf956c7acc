package backupstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/testkit"
)

const (
	jobA = "01JD5ZQ8W3K9V4T7X2M6N1P0RS"
	jobB = "01JD5ZQ8W3K9V4T7X2M6N1P0RT"
)

var (
	t0    = time.Date(2025, 11, 27, 10, 15, 0, 0, time.UTC)
	nameA = backupfmt.ArchiveName(t0, jobA, backupfmt.Gzip)
	nameB = backupfmt.ArchiveName(t0.Add(time.Hour), jobB, backupfmt.Zstd)
)

// fixture is one Store implementation under test.
type fixture struct {
	store Store
	// untouched reports files the store must never touch (outside its
	// directory), for the local store; nil for NATS.
	outside string
	local   *Local
}

func stores(t *testing.T) map[string]func(t *testing.T) fixture {
	return map[string]func(t *testing.T) fixture{
		"local": func(t *testing.T) fixture {
			parent := t.TempDir()
			l, err := NewLocal(filepath.Join(parent, "backups"))
			if err != nil {
				t.Fatal(err)
			}
			// Decoys a path-traversing name would reach.
			for _, p := range []string{"victim", "y", "etc/passwd"} {
				os.MkdirAll(filepath.Dir(filepath.Join(parent, p)), 0o700)
				os.WriteFile(filepath.Join(parent, p), []byte("keep"), 0o600)
			}
			return fixture{store: l, outside: parent, local: l}
		},
		"nats": func(t *testing.T) fixture {
			n, _ := testNATS(t)
			return fixture{store: n}
		},
		"s3": func(t *testing.T) fixture {
			return fixture{store: testS3(t)}
		},
	}
}

func forEachStore(t *testing.T, fn func(t *testing.T, fx fixture)) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) { fn(t, open(t)) })
	}
}

func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPutListOpenDelete(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, fx fixture) {
		ctx := ctxT(t)
		s := fx.store
		if got, err := s.List(ctx); err != nil || len(got) != 0 {
			t.Fatalf("empty list = %v, %v", got, err)
		}
		dataA := randomBytes(3<<20+17, 1) // several object-store chunks
		dataB := randomBytes(1000, 2)
		before := time.Now().Add(-time.Second)
		infoA, err := s.Put(ctx, nameA, bytes.NewReader(dataA))
		if err != nil {
			t.Fatalf("put A: %v", err)
		}
		if infoA.Name != nameA || infoA.Size != int64(len(dataA)) || infoA.SHA256 != sha(dataA) || infoA.Modified.Before(before) || !infoA.Created.Equal(t0) {
			t.Fatalf("put A info %+v", infoA)
		}
		if _, err := s.Put(ctx, nameB, bytes.NewReader(dataB)); err != nil {
			t.Fatalf("put B: %v", err)
		}
		if _, err := s.Put(ctx, nameA, bytes.NewReader(dataB)); !errors.Is(err, ErrExists) {
			t.Fatalf("put over an existing archive = %v, want ErrExists", err)
		}
		list, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Name != nameB || list[1].Name != nameA {
			t.Fatalf("list (newest first) = %+v", list)
		}
		if list[1].SHA256 != sha(dataA) || list[1].Size != int64(len(dataA)) || list[0].SHA256 != sha(dataB) {
			t.Fatalf("list sha/size: %+v", list)
		}
		rc, info, err := s.Open(ctx, nameA)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, dataA) {
			t.Fatalf("open A: %d bytes, %v", len(got), err)
		}
		if info.SHA256 != sha(got) || info.Size != int64(len(dataA)) {
			t.Fatalf("open info %+v", info)
		}
		if err := s.Delete(ctx, nameA); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, nameA); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete = %v", err)
		}
		if _, _, err := s.Open(ctx, nameA); !errors.Is(err, ErrNotFound) {
			t.Fatalf("open deleted = %v", err)
		}
		if _, err := s.Meta(ctx, nameA); !errors.Is(err, ErrNotFound) {
			t.Fatalf("meta of deleted = %v", err)
		}
		list, _ = s.List(ctx)
		if len(list) != 1 || list[0].Name != nameB {
			t.Fatalf("list after delete = %+v", list)
		}
		// The name is free again.
		if _, err := s.Put(ctx, nameA, bytes.NewReader(dataB)); err != nil {
			t.Fatalf("put after delete: %v", err)
		}
		if fx.local != nil {
			assertDir(t, fx.local.Dir(), nameA, nameA+shaSuffix, nameB, nameB+shaSuffix)
		}
		if s.Describe() == "" {
			t.Fatal("empty Describe")
		}
	})
}

// assertDir fails unless dir holds exactly names (in any order).
func assertDir(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range entries {
		got[e.Name()] = true
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s holds %v, want %v", dir, got, want)
	}
}

// failingPuts are readers that fail (or cancel) after some bytes.
func failingPuts(t *testing.T) map[string]func() (context.Context, io.Reader, error) {
	return map[string]func() (context.Context, io.Reader, error){
		"reader error": func() (context.Context, io.Reader, error) {
			boom := errors.New("pg_dump exited with status 1")
			return ctxT(t), io.MultiReader(bytes.NewReader(randomBytes(2<<20, 3)), iotest.ErrReader(boom)), boom
		},
		"context cancelled": func() (context.Context, io.Reader, error) {
			ctx, cancel := context.WithCancel(ctxT(t))
			return ctx, &cancelAfter{r: bytes.NewReader(randomBytes(4<<20, 4)), n: 1 << 20, cancel: cancel}, context.Canceled
		},
		"deadline": func() (context.Context, io.Reader, error) {
			ctx, cancel := context.WithTimeout(ctxT(t), 200*time.Millisecond)
			t.Cleanup(cancel)
			return ctx, &slowReader{r: bytes.NewReader(randomBytes(4<<20, 5))}, context.DeadlineExceeded
		},
	}
}

// cancelAfter cancels its context once n bytes were read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// slowReader yields 64 KiB every 20ms.
type slowReader struct{ r io.Reader }

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(20 * time.Millisecond)
	if len(p) > 64<<10 {
		p = p[:64<<10]
	}
	return s.r.Read(p)
}

func TestFailedPutLeavesNothing(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, fx fixture) {
		s := fx.store
		ctx := ctxT(t)
		keep := randomBytes(5000, 9)
		if _, err := s.Put(ctx, nameB, bytes.NewReader(keep)); err != nil {
			t.Fatal(err)
		}
		for name, mk := range failingPuts(t) {
			t.Run(name, func(t *testing.T) {
				pctx, r, want := mk()
				_, err := s.Put(pctx, nameA, r)
				if err == nil || !errors.Is(err, want) {
					t.Fatalf("put = %v, want %v", err, want)
				}
				list, err := s.List(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(list) != 1 || list[0].Name != nameB || list[0].SHA256 != sha(keep) {
					t.Fatalf("list after a failed put = %+v", list)
				}
				if _, _, err := s.Open(ctx, nameA); !errors.Is(err, ErrNotFound) {
					t.Fatalf("open after a failed put = %v", err)
				}
				if fx.local != nil {
					assertDir(t, fx.local.Dir(), nameB, nameB+shaSuffix)
				}
				if n, ok := s.(*NATS); ok {
					assertNoOrphanChunks(t, n, []string{nameB})
				}
				if s3, ok := s.(*S3); ok {
					assertS3Holds(t, s3, nameB, nameB+shaSuffix)
				}
			})
		}
		// The name was never taken: a complete Put succeeds.
		data := randomBytes(10000, 10)
		if info, err := s.Put(ctx, nameA, bytes.NewReader(data)); err != nil || info.SHA256 != sha(data) {
			t.Fatalf("put after failures: %+v %v", info, err)
		}
	})
}

// assertNoOrphanChunks checks that the bucket's stream holds no chunk
// messages but those of the named objects (a failed Put purged its chunks).
func assertNoOrphanChunks(t *testing.T, n *NATS, names []string) {
	t.Helper()
	ctx := ctxT(t)
	st, err := n.obs.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	si := st.(*jetstream.ObjectBucketStatus).StreamInfo()
	var chunks uint64
	for _, name := range names {
		oi, err := n.obs.GetInfo(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		chunks += uint64(oi.Chunks)
	}
	// Messages = the objects' chunks + one meta message per object.
	if si.State.Msgs != chunks+uint64(len(names)) {
		t.Fatalf("bucket stream holds %d messages, objects account for %d chunks: orphaned chunks", si.State.Msgs, chunks)
	}
}

// An archive being written is not listed until it is complete.
func TestPutInProgressIsNotListed(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, fx fixture) {
		s := fx.store
		ctx := ctxT(t)
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := s.Put(ctx, nameA, pr)
			done <- err
		}()
		data := randomBytes(3<<20, 11)
		if _, err := pw.Write(data[:2<<20]); err != nil {
			t.Fatal(err)
		}
		list, err := s.List(ctx)
		if err != nil || len(list) != 0 {
			t.Fatalf("list during put = %+v, %v", list, err)
		}
		if _, _, err := s.Open(ctx, nameA); !errors.Is(err, ErrNotFound) {
			t.Fatalf("open during put = %v", err)
		}
		pw.Write(data[2<<20:])
		pw.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		list, _ = s.List(ctx)
		if len(list) != 1 || list[0].SHA256 != sha(data) {
			t.Fatalf("list after put = %+v", list)
		}
	})
}

func TestInvalidNames(t *testing.T) {
	t.Parallel()
	bad := []string{
		"", "../../etc/passwd", "../victim", "backup-x/../../y", "/etc/passwd",
		nameA + "\x00", "\x00", nameA + "/../../victim", "./" + nameA, nameA + ".sha256", nameA + ".meta.json",
		".tmp-123", strings.ToUpper(nameA), "..", ".", "backup-20251127T101500Z-" + jobA + ".tar.gz/..",
	}
	forEachStore(t, func(t *testing.T, fx fixture) {
		s := fx.store
		ctx := ctxT(t)
		if _, err := s.Put(ctx, nameA, strings.NewReader("archive")); err != nil {
			t.Fatal(err)
		}
		for _, name := range bad {
			if _, _, err := s.Open(ctx, name); !errors.Is(err, ErrNotFound) || !errors.Is(err, backupfmt.ErrBadName) {
				t.Errorf("open %q = %v", name, err)
			}
			if err := s.Delete(ctx, name); !errors.Is(err, ErrNotFound) || !errors.Is(err, backupfmt.ErrBadName) {
				t.Errorf("delete %q = %v", name, err)
			}
			if _, err := s.Meta(ctx, name); !errors.Is(err, ErrNotFound) || !errors.Is(err, backupfmt.ErrBadName) {
				t.Errorf("meta %q = %v", name, err)
			}
			if err := s.SetMeta(ctx, name, Meta{Note: "x"}); !errors.Is(err, ErrNotFound) || !errors.Is(err, backupfmt.ErrBadName) {
				t.Errorf("set meta %q = %v", name, err)
			}
			if _, err := s.Put(ctx, name, strings.NewReader("evil")); !errors.Is(err, backupfmt.ErrBadName) {
				t.Errorf("put %q = %v", name, err)
			}
		}
		if fx.outside != "" {
			for _, p := range []string{"victim", "y", "etc/passwd"} {
				if b, err := os.ReadFile(filepath.Join(fx.outside, p)); err != nil || string(b) != "keep" {
					t.Errorf("%s touched: %q %v", p, b, err)
				}
			}
			assertDir(t, fx.local.Dir(), nameA, nameA+shaSuffix)
		}
		list, _ := s.List(ctx)
		if len(list) != 1 || list[0].Name != nameA {
			t.Fatalf("list = %+v", list)
		}
		// A valid but unknown name is ErrNotFound without ErrBadName.
		if _, _, err := s.Open(ctx, nameB); !errors.Is(err, ErrNotFound) || errors.Is(err, backupfmt.ErrBadName) {
			t.Fatalf("open unknown = %v", err)
		}
	})
}

func TestMetaRoundTrip(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, fx fixture) {
		s := fx.store
		ctx := ctxT(t)
		put, err := s.Put(ctx, nameA, strings.NewReader("archive bytes"))
		if err != nil {
			t.Fatal(err)
		}
		if m, err := s.Meta(ctx, nameA); err != nil || !reflect.DeepEqual(m, Meta{}) {
			t.Fatalf("meta before set = %+v, %v", m, err)
		}
		if err := s.SetMeta(ctx, nameB, Meta{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("set meta of unknown = %v", err)
		}
		manifestCreated := t0.Add(-2 * time.Minute) // the manifest's time, not the name's, orders archives
		m := Meta{
			CreatedAt: manifestCreated, JobID: jobA, AppVersion: "1.2.3", Note: "before upgrade",
			Components: []string{"system", "target"}, Skipped: map[string]string{"chroma": "CHROMA_URL not set"},
		}
		if err := s.SetMeta(ctx, nameA, m); err != nil {
			t.Fatal(err)
		}
		m.Verification = &Verification{VerifiedAt: t0.Add(time.Hour), Outcome: OutcomeFailed, Error: "target/vanna_db.db: sha256 mismatch", JobID: jobB}
		if err := s.SetMeta(ctx, nameA, m); err != nil {
			t.Fatal(err)
		}
		got, err := s.Meta(ctx, nameA)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("meta = %+v, %v; want %+v", got, err, m)
		}
		if got.Verified() {
			t.Fatal("failed verification reported as verified")
		}
		list, _ := s.List(ctx)
		if len(list) != 1 || !reflect.DeepEqual(list[0].Meta, m) || !list[0].Created.Equal(manifestCreated) {
			t.Fatalf("list = %+v", list)
		}
		if !list[0].Modified.Equal(put.Modified) && list[0].Modified.Sub(put.Modified).Abs() > time.Second {
			t.Fatalf("SetMeta changed Modified: %s → %s", put.Modified, list[0].Modified)
		}
		if list[0].SHA256 != sha([]byte("archive bytes")) {
			t.Fatal("SetMeta changed the SHA-256")
		}
		rc, _, err := s.Open(ctx, nameA)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != "archive bytes" {
			t.Fatalf("content after SetMeta: %q", b)
		}
		huge := Meta{Note: strings.Repeat("x", MaxMetaSize)}
		if err := s.SetMeta(ctx, nameA, huge); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d", MaxMetaSize)) {
			t.Fatalf("oversized meta: %v; want the size refusal", err)
		}
		// Deleting the archive deletes its meta; a new archive of that name starts clean.
		if err := s.Delete(ctx, nameA); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, nameA, strings.NewReader("new")); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Meta(ctx, nameA); !reflect.DeepEqual(got, Meta{}) {
			t.Fatalf("meta of a new archive = %+v", got)
		}
	})
}

func TestSummary(t *testing.T) {
	t.Parallel()
	m := backupfmt.Manifest{
		CreatedAt: t0, JobID: jobA, AppVersion: "v", Note: "n",
		Components: map[string]backupfmt.Component{
			"system": {Status: backupfmt.StatusIncluded},
			"target": {Status: backupfmt.StatusIncluded},
			"chroma": {Status: backupfmt.StatusSkipped, Reason: "not configured"},
		},
	}
	s := Summary(m)
	want := Meta{CreatedAt: t0, JobID: jobA, AppVersion: "v", Note: "n", Components: []string{"system", "target"}, Skipped: map[string]string{"chroma": "not configured"}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("summary %+v", s)
	}
}

func TestListIgnoresForeignEntries(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, fx fixture) {
		s := fx.store
		ctx := ctxT(t)
		if _, err := s.Put(ctx, nameA, strings.NewReader("a")); err != nil {
			t.Fatal(err)
		}
		switch st := s.(type) {
		case *Local:
			dir := st.Dir()
			os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600)
			os.WriteFile(filepath.Join(dir, ".tmp-12345"), []byte("partial"), 0o600)
			os.WriteFile(filepath.Join(dir, nameB+shaSuffix), []byte("orphan"), 0o600)
			os.Mkdir(filepath.Join(dir, backupfmt.ArchiveName(t0, jobB, backupfmt.Zstd)), 0o700)
			os.Symlink("/etc/passwd", filepath.Join(dir, backupfmt.ArchiveName(t0.Add(time.Minute), jobB, backupfmt.Gzip)))
		case *NATS:
			if _, err := st.obs.PutString(ctx, "notes.txt", "x"); err != nil {
				t.Fatal(err)
			}
			if _, err := st.obs.PutString(ctx, "../"+nameB, "x"); err != nil {
				t.Fatal(err)
			}
		case *S3:
			putForeignS3(ctx, t, st)
		}
		list, err := s.List(ctx)
		if err != nil || len(list) != 1 || list[0].Name != nameA {
			t.Fatalf("list = %+v, %v", list, err)
		}
		if fx.local != nil {
			symlinked := backupfmt.ArchiveName(t0.Add(time.Minute), jobB, backupfmt.Gzip)
			if _, _, err := s.Open(ctx, symlinked); !errors.Is(err, ErrNotFound) {
				t.Fatalf("open of a symlink = %v", err)
			}
		}
	})
}

// The local store on a full disk: the Put fails with the error, removes
// its temp file, and earlier archives are untouched. The disk is simulated
// by an injected writer that fails with ENOSPC after N bytes (mounting a
// small tmpfs is not possible in unprivileged tests).
func TestLocalDiskFull(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	keep := randomBytes(100_000, 12)
	if _, err := l.Put(ctx, nameB, bytes.NewReader(keep)); err != nil {
		t.Fatal(err)
	}
	if err := l.SetMeta(ctx, nameB, Meta{Note: "keep"}); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int64{0, 1, 1 << 20, 3<<20 - 1} {
		l.wrap = func(w io.Writer) io.Writer { return &diskFull{w: w, left: limit} }
		_, err := l.Put(ctx, nameA, bytes.NewReader(randomBytes(3<<20, 13)))
		if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrNoSpace) {
			t.Fatalf("put on a full disk (limit %d) = %v, want ENOSPC marked ErrNoSpace", limit, err)
		}
		assertDir(t, l.Dir(), nameB, nameB+shaSuffix, nameB+metaSuffix)
	}
	l.wrap = nil
	list, err := l.List(ctx)
	if err != nil || len(list) != 1 || list[0].SHA256 != sha(keep) || list[0].Meta.Note != "keep" {
		t.Fatalf("list after ENOSPC = %+v, %v", list, err)
	}
	rc, _, _ := l.Open(ctx, nameB)
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, keep) {
		t.Fatal("earlier archive changed")
	}
}

type diskFull struct {
	w    io.Writer
	left int64
}

func (d *diskFull) Write(p []byte) (int, error) {
	if int64(len(p)) > d.left {
		n, _ := d.w.Write(p[:d.left])
		d.left = 0
		return n, &os.PathError{Op: "write", Path: "tmp", Err: syscall.ENOSPC}
	}
	d.left -= int64(len(p))
	return d.w.Write(p)
}

func TestNewLocalRemovesStaleFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := time.Now().Add(-2 * StaleAfter)
	files := map[string]bool{ // name → kept
		".tmp-old":                 false,
		".tmp-new":                 true,
		nameA:                      true,
		nameA + shaSuffix:          true,
		nameB + shaSuffix:          false, // orphaned sidecar
		nameB + metaSuffix:         false,
		"notes.txt":                true,
		"backup-unrelated.sha256":  true,
		nameA + ".sha256.tmp-junk": true,
	}
	for name := range files {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("x"), 0o600)
		if name != ".tmp-new" {
			os.Chtimes(p, old, old)
		}
	}
	if _, err := NewLocal(dir); err != nil {
		t.Fatal(err)
	}
	var kept []string
	for name, keep := range files {
		if keep {
			kept = append(kept, name)
		}
	}
	assertDir(t, dir, kept...)
}

func TestLocalSidecarChecksWithSha256sum(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sha256sum"); err != nil {
		testkit.Unavailable(t, "sha256sum (coreutils)", err)
	}
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Put(ctxT(t), nameA, bytes.NewReader(randomBytes(5000, 14))); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sha256sum", "-c", nameA+shaSuffix)
	cmd.Dir = l.Dir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v: %s", err, out)
	}
	fi, _ := os.Stat(filepath.Join(l.Dir(), nameA))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive mode %v, want 0600", fi.Mode().Perm())
	}
}

// A whole archive from backupfmt goes through the store and verifies.
func TestArchiveThroughStore(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, fx fixture) {
		ctx := ctxT(t)
		pr, pw := io.Pipe()
		var res backupfmt.Result
		go func() {
			w, err := backupfmt.NewWriter(pw, backupfmt.Zstd, backupfmt.WithChunkSize(64<<10))
			if err == nil {
				_, err = w.AddStream(ctx, "system", "system/system.dump", backupfmt.KindPGDump, bytes.NewReader(randomBytes(300<<10, 15)))
			}
			if err == nil {
				res, err = w.Close(backupfmt.Manifest{CreatedAt: t0.Add(time.Hour), JobID: jobB})
			}
			pw.CloseWithError(err)
		}()
		info, err := fx.store.Put(ctx, nameB, pr)
		if err != nil {
			t.Fatal(err)
		}
		if info.SHA256 != res.SHA256 || info.Size != res.Size {
			t.Fatalf("store %s/%d, writer %s/%d", info.SHA256, info.Size, res.SHA256, res.Size)
		}
		rc, _, err := fx.store.Open(ctx, nameB)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		rep, err := backupfmt.Verify(ctx, rc, backupfmt.VerifyOptions{ReadOptions: backupfmt.ReadOptions{Name: nameB}})
		if err != nil {
			t.Fatal(err)
		}
		if rep.ArchiveSHA256 != info.SHA256 {
			t.Fatalf("verify read %s, store says %s", rep.ArchiveSHA256, info.SHA256)
		}
		if err := fx.store.SetMeta(ctx, nameB, Summary(rep.Manifest)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestFromConfig(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	cfg := config.Config{BackupStore: "local", BackupDir: t.TempDir()}
	s, err := FromConfig(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*Local); !ok || !strings.Contains(s.Describe(), cfg.BackupDir) {
		t.Fatalf("local: %T %s", s, s.Describe())
	}
	cfg.BackupStore = "nats"
	if _, err := FromConfig(ctx, cfg, nil); err == nil || !strings.Contains(err.Error(), "BACKUP_STORE=nats needs a JetStream connection") {
		t.Fatalf("nats without JetStream: %v; want the missing-JetStream refusal", err)
	}
	b, _ := testkit.Bus(t)
	cfg.NATSReplicas = 1
	s, err = FromConfig(ctx, cfg, b.JS)
	if err != nil {
		t.Fatal(err)
	}
	if s.Describe() != fmt.Sprintf("NATS object store %s (R1)", bus.BucketBackups) {
		t.Fatalf("describe %q", s.Describe())
	}
	// A second store on the same bucket sees the same archives.
	if _, err := s.Put(ctx, nameA, strings.NewReader("shared")); err != nil {
		t.Fatal(err)
	}
	s2, err := NewNATS(ctx, b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := s2.List(ctx); len(list) != 1 {
		t.Fatalf("second store lists %+v", list)
	}
	cfg.BackupStore = "s3"
	if _, err := FromConfig(ctx, cfg, b.JS); err == nil {
		t.Fatal("s3 without a bucket accepted")
	}
	cfg.BackupStore = "ftp"
	if _, err := FromConfig(ctx, cfg, b.JS); err == nil || !strings.Contains(err.Error(), `BACKUP_STORE="ftp": accepted values: local, nats, s3`) {
		t.Fatalf("unknown store: %v; want the accepted-values refusal", err)
	}
}

func TestOpenCloseNoLeak(t *testing.T) {
	// Not parallel: counts the goroutines of the whole process.
	forEachStore(t, func(t *testing.T, fx fixture) {
		ctx := ctxT(t)
		if _, err := fx.store.Put(ctx, nameA, bytes.NewReader(randomBytes(2<<20, 16))); err != nil {
			t.Fatal(err)
		}
		settle := func() int {
			time.Sleep(20 * time.Millisecond)
			return runtime.NumGoroutine()
		}
		before := settle()
		for range 5 {
			rc, _, err := fx.store.Open(ctx, nameA)
			if err != nil {
				t.Fatal(err)
			}
			io.CopyN(io.Discard, rc, 300<<10) // a partial read, then Close
			rc.Close()
			fx.store.List(ctx)
		}
		deadline := time.Now().Add(3 * time.Second)
		for settle() > before {
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutines before, %d after", before, runtime.NumGoroutine())
			}
		}
	})
}

// testNATS opens the NATS store on a fresh embedded server's bus.
func testNATS(t *testing.T) (*NATS, *bus.Bus) {
	t.Helper()
	b, _ := testkit.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := NewNATS(ctx, b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	return n, b
}
