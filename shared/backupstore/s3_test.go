package backupstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/testkit"
)

// testPrefix is the key prefix of the S3 stores under test: keys outside
// it belong to someone else.
const testPrefix = "insightops/test/"

// s3Config is the store configuration of a bucket of srv.
func s3Config(srv *testkit.S3Server, bucket string) config.S3 {
	return config.S3{
		Endpoint: srv.Endpoint, Bucket: bucket, Prefix: testPrefix, Region: srv.Region, PathStyle: true,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, PartSize: 5 << 20,
	}
}

// testS3 opens the S3 store on a fresh bucket of a fresh versitygw.
func testS3(t *testing.T) *S3 {
	t.Helper()
	srv := testkit.S3(t)
	s, err := NewS3(ctxT(t), s3Config(srv, srv.Bucket(t, false)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keys lists every key of the store's bucket (all prefixes).
func keys(t *testing.T, s *S3) []string {
	t.Helper()
	var out []string
	for oi := range s.client.ListObjects(ctxT(t), s.cfg.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		out = append(out, oi.Key)
	}
	slices.Sort(out)
	return out
}

// assertS3Holds checks that the bucket holds exactly the named objects
// under the prefix and no incomplete upload.
func assertS3Holds(t *testing.T, s *S3, names ...string) {
	t.Helper()
	var want []string
	for _, n := range names {
		want = append(want, s.key(n))
	}
	slices.Sort(want)
	if got := keys(t, s); !slices.Equal(got, want) {
		t.Fatalf("bucket holds %v, want %v", got, want)
	}
	for up := range s.client.ListIncompleteUploads(ctxT(t), s.cfg.Bucket, "", true) {
		if up.Err != nil {
			t.Fatal(up.Err)
		}
		t.Fatalf("incomplete upload left: %s (%s)", up.Key, up.UploadID)
	}
}

// putForeignS3 writes objects List must not take for archives.
func putForeignS3(ctx context.Context, t *testing.T, s *S3) {
	t.Helper()
	for _, key := range []string{
		testPrefix + "notes.txt", testPrefix + nameB + shaSuffix, testPrefix + "sub/" + nameB,
		"elsewhere/" + nameB, nameB,
	} {
		if _, err := s.client.PutObject(ctx, s.cfg.Bucket, key, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// A multipart upload from a part-size buffer: the object is made of
// ceil(size/part) parts (its ETag says how many), and it reads back whole.
func TestS3PutIsMultipartInPartSizeChunks(t *testing.T) {
	t.Parallel()
	s := testS3(t)
	ctx := ctxT(t)
	data := randomBytes(3*5<<20+17, 21)
	reads := &maxRead{r: bytes.NewReader(data)}
	s.wrap = func(r io.Reader) io.Reader { reads.r = r; return reads }
	info, err := s.Put(ctx, nameA, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if info.SHA256 != sha(data) || info.Size != int64(len(data)) {
		t.Fatalf("info %+v", info)
	}
	oi, err := s.client.StatObject(ctx, s.cfg.Bucket, s.key(nameA), minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.Trim(oi.ETag, `"`), "-4") {
		t.Fatalf("ETag %s: want a multipart object of 4 parts", oi.ETag)
	}
	if reads.max > int(s.cfg.PartSize) {
		t.Fatalf("a read asked for %d bytes, more than a part (%d)", reads.max, s.cfg.PartSize)
	}
	rc, _, err := s.Open(ctx, nameA)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	assertS3Holds(t, s, nameA, nameA+shaSuffix)
}

// maxRead records the largest buffer a Read was given.
type maxRead struct {
	r   io.Reader
	max int
}

func (m *maxRead) Read(p []byte) (int, error) {
	m.max = max(m.max, len(p))
	return m.r.Read(p)
}

// Wrong credentials: refused at open, and a Put with them fails with
// ErrAccessDenied and leaves nothing.
func TestS3WrongCredentials(t *testing.T) {
	t.Parallel()
	srv := testkit.S3(t)
	cfg := s3Config(srv, srv.Bucket(t, false))
	good, err := NewS3(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*config.S3){
		"secret": func(c *config.S3) { c.SecretAccessKey = "wrong-" + c.SecretAccessKey },
		"key id": func(c *config.S3) { c.AccessKeyID = "AKNOSUCHUSER" },
	} {
		t.Run(name, func(t *testing.T) {
			bad := cfg
			mutate(&bad)
			if _, err := NewS3(ctxT(t), bad); !errors.Is(err, ErrAccessDenied) {
				t.Fatalf("open with a wrong %s = %v, want ErrAccessDenied", name, err)
			}
			s, err := newS3(bad)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Put(ctxT(t), nameA, bytes.NewReader(randomBytes(6<<20, 22))); !errors.Is(err, ErrAccessDenied) {
				t.Fatalf("put with a wrong %s = %v, want ErrAccessDenied", name, err)
			}
			if _, err := s.List(ctxT(t)); !errors.Is(err, ErrAccessDenied) {
				t.Fatalf("list with a wrong %s = %v, want ErrAccessDenied", name, err)
			}
			assertS3Holds(t, good)
		})
	}
}

// A missing bucket: refused at open; one removed under a store fails its
// Put with ErrNoBucket.
func TestS3MissingBucket(t *testing.T) {
	t.Parallel()
	srv := testkit.S3(t)
	ctx := ctxT(t)
	if _, err := NewS3(ctx, s3Config(srv, "no-such-bucket")); !errors.Is(err, ErrNoBucket) {
		t.Fatalf("open of a missing bucket = %v, want ErrNoBucket", err)
	}
	bucket := srv.Bucket(t, false)
	s, err := NewS3(ctx, s3Config(srv, bucket))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Client(t).RemoveBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, nameA, strings.NewReader("archive")); !errors.Is(err, ErrNoBucket) {
		t.Fatalf("put into a removed bucket = %v, want ErrNoBucket", err)
	}
	if _, err := s.List(ctx); !errors.Is(err, ErrNoBucket) {
		t.Fatalf("list of a removed bucket = %v, want ErrNoBucket", err)
	}
}

// An endpoint nothing listens on: ErrUnreachable, at open and on Put.
func TestS3UnreachableEndpoint(t *testing.T) {
	t.Parallel()
	cfg := config.S3{Endpoint: testkit.ClosedEndpoint(t), Bucket: "backups", Region: "us-east-1", PathStyle: true, AccessKeyID: "k", SecretAccessKey: "s"}
	if _, err := NewS3(ctxT(t), cfg); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("open = %v, want ErrUnreachable", err)
	}
	s, err := newS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctxT(t), nameA, strings.NewReader("archive")); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("put = %v, want ErrUnreachable", err)
	}
}

// A full server: versitygw's posix root on an 8 MiB tmpfs. An archive
// that does not fit fails with ErrNoSpace, leaves nothing (no object, no
// incomplete upload), and the earlier archive stays whole.
func TestS3QuotaFull(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "s3root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", root, "tmpfs", 0, "size=8m,mode=0755"); err != nil {
		testkit.Unavailable(t, "a tmpfs for the S3 server's root (mount needs root or CAP_SYS_ADMIN)", err)
		return
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(root, 0); err != nil {
			t.Errorf("unmount %s: %v", root, err)
		}
	})
	srv := testkit.S3On(t, root) // registered after the unmount: stops first
	ctx := ctxT(t)
	s, err := NewS3(ctx, s3Config(srv, srv.Bucket(t, false)))
	if err != nil {
		t.Fatal(err)
	}
	keep := randomBytes(1<<20, 23)
	if _, err := s.Put(ctx, nameB, bytes.NewReader(keep)); err != nil {
		t.Fatal(err)
	}
	_, err = s.Put(ctx, nameA, bytes.NewReader(randomBytes(12<<20, 24)))
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("put on a full server = %v, want ErrNoSpace", err)
	}
	t.Logf("full server: %v", err)
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != nameB || list[0].SHA256 != sha(keep) {
		t.Fatalf("list after a full put = %+v, %v", list, err)
	}
	assertS3Holds(t, s, nameB, nameB+shaSuffix)
	rc, _, err := s.Open(ctx, nameB)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, keep) {
		t.Fatal("the earlier archive changed")
	}
}

// Object lock: archives are written under retention; a bucket without
// object lock is refused when the lock is configured.
func TestS3ObjectLock(t *testing.T) {
	t.Parallel()
	srv := testkit.S3(t)
	ctx := ctxT(t)
	cfg := s3Config(srv, srv.Bucket(t, false))
	cfg.LockDays, cfg.LockMode = 2, "GOVERNANCE"
	if _, err := NewS3(ctx, cfg); err == nil || !strings.Contains(err.Error(), "no object lock") {
		t.Fatalf("lock on a bucket without object lock = %v", err)
	}
	cfg.Bucket = srv.Bucket(t, true)
	s, err := NewS3(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if _, err := s.Put(ctx, nameA, bytes.NewReader(randomBytes(6<<20, 25))); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{s.key(nameA), s.key(nameA) + shaSuffix} {
		// Read from the object's headers (minio-go's GetObjectRetention
		// does not parse versitygw's answer).
		oi, err := s.client.StatObject(ctx, cfg.Bucket, key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatalf("stat %s: %v", key, err)
		}
		mode := oi.Metadata.Get("X-Amz-Object-Lock-Mode")
		until, err := time.Parse(time.RFC3339, oi.Metadata.Get("X-Amz-Object-Lock-Retain-Until-Date"))
		if mode != string(minio.Governance) || err != nil || until.Before(before.Add(47*time.Hour)) {
			t.Fatalf("retention of %s = %q until %v (%v), want GOVERNANCE for 2 days", key, mode, until, err)
		}
	}
	// versitygw without versioning cannot hide the locked object behind a
	// delete marker: the delete is refused, and the archive stays whole.
	if err := s.Delete(ctx, nameA); !errors.Is(err, ErrLocked) || errors.Is(err, ErrAccessDenied) {
		t.Fatalf("delete of a locked archive = %v, want ErrLocked", err)
	}
	assertS3Holds(t, s, nameA, nameA+shaSuffix)
}

// Credentials from an AWS shared credentials file (BACKUP_S3_CREDENTIALS_FILE
// and its profile) instead of the AWS_* variables.
func TestS3CredentialsFile(t *testing.T) {
	t.Parallel()
	srv := testkit.S3(t)
	ctx := ctxT(t)
	file := filepath.Join(t.TempDir(), "credentials")
	ini := "[default]\naws_access_key_id = AKWRONG\naws_secret_access_key = wrong\n\n[backups]\naws_access_key_id = " + srv.AccessKey + "\naws_secret_access_key = " + srv.SecretKey + "\n"
	if err := os.WriteFile(file, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := s3Config(srv, srv.Bucket(t, false))
	cfg.AccessKeyID, cfg.SecretAccessKey, cfg.CredentialsFile, cfg.Profile = "", "", file, "backups"
	s, err := NewS3(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, nameA, strings.NewReader("archive")); err != nil {
		t.Fatal(err)
	}
	cfg.Profile = "default"
	if _, err := NewS3(ctx, cfg); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("the default profile's wrong keys = %v, want ErrAccessDenied", err)
	}
}
