package testkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// VersityGWBin is the versitygw binary `make s3-tools` builds (the version
// is pinned in the Makefile, VERSITYGW_VERSION), relative to the
// repository root. $VERSITYGW, or versitygw on PATH, is used when set or
// present.
const VersityGWBin = "bin/tools/versitygw"

// S3StartTimeout bounds how long versitygw may take to answer.
const S3StartTimeout = 30 * time.Second

// S3Server is a real S3 server for a test: versitygw's posix gateway on a
// loopback port, signing (SigV4) enforced, its buckets directories of
// Root.
type S3Server struct {
	// Endpoint is its URL, e.g. http://127.0.0.1:41234.
	Endpoint string
	// AccessKey and SecretKey are its root user's credentials (random per
	// server).
	AccessKey, SecretKey string
	Region               string
	// Root is the directory whose subdirectories are the buckets.
	Root string
	Log  string

	proc *process
}

// S3 starts an S3 server for this test with its data in a temp dir, and
// stops it when the test ends. Without the versitygw binary (`make
// s3-tools`) or when it does not come up, the test is Unavailable.
func S3(t testing.TB) *S3Server {
	t.Helper()
	return S3On(t, t.TempDir())
}

// S3On is S3 with its buckets in root (a small tmpfs, to fill it up).
func S3On(t testing.TB, root string) *S3Server {
	t.Helper()
	srv, err := StartS3(context.Background(), root, t.TempDir())
	if err != nil {
		Unavailable(t, "S3 server (versitygw)", err)
		return nil
	}
	t.Cleanup(srv.Stop)
	return srv
}

// StartS3 starts an S3 server (versitygw, found as VersityGWBin says) with
// its buckets in root and its log in logDir, retrying twice on a failed
// start; Stop ends it. Tests use S3; commands (backupbench) call it
// directly.
func StartS3(ctx context.Context, root, logDir string) (*S3Server, error) {
	bin, err := versityGW()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*S3StartTimeout)
	defer cancel()
	var srv *S3Server
	for attempt := 1; attempt <= 3; attempt++ {
		srv, err = startS3(ctx, bin, root, logDir)
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	return srv, err
}

// versityGW finds the versitygw binary: $VERSITYGW, PATH, then the
// repository's bin/tools.
func versityGW() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, VersityGWBin)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is missing (run `make s3-tools`: it builds versitygw from the Go module proxy): %w", VersityGWBin, err)
	}
	return p, nil
}

func startS3(ctx context.Context, bin, root, logDir string) (*S3Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	srv := &S3Server{
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(port),
		AccessKey: "AK" + strings.ToUpper(RandomSuffix()), SecretKey: "sk-" + RandomSuffix() + RandomSuffix(),
		Region: "us-east-1", Root: root,
	}
	cmd := exec.Command(bin, "--port", "127.0.0.1:"+strconv.Itoa(port), "--region", srv.Region, "--quiet", "posix", root)
	// The credentials go in the environment, not the command line.
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+srv.AccessKey, "ROOT_SECRET_ACCESS_KEY="+srv.SecretKey)
	p, err := startProcess("versitygw", cmd, filepath.Join(logDir, "versitygw.log"))
	if err != nil {
		return nil, err
	}
	srv.Log, srv.proc = p.log, p
	if err := p.waitReady(ctx, srv.Endpoint, S3StartTimeout, 50*time.Millisecond,
		func() bool { return s3Answers(ctx, srv.Endpoint) }); err != nil {
		return nil, err
	}
	return srv, nil
}

// s3Answers reports whether an HTTP server answers at base (an anonymous
// request is refused, which is an answer).
func s3Answers(ctx context.Context, base string) bool {
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodGet, base+"/", http.NoBody)
	if err != nil {
		return false
	}
	res, err := HTTP.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return true
}

// Stop ends the server (SIGTERM, SIGKILL after 5s) and waits for it.
func (s *S3Server) Stop() { s.proc.stop() }

// Host is the endpoint's host:port.
func (s *S3Server) Host() string { return strings.TrimPrefix(s.Endpoint, "http://") }

// Client returns a minio-go client of the server's root user.
func (s *S3Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := s.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NewClient is Client outside a test.
func (s *S3Server) NewClient() (*minio.Client, error) {
	c, err := minio.New(s.Host(), &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Region: s.Region, BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	return c, nil
}

// Bucket creates a bucket with a random name (object lock enabled when
// locking) and returns its name.
func (s *S3Server) Bucket(t testing.TB, locking bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name, err := s.MakeBucket(ctx, locking)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// MakeBucket is Bucket outside a test.
func (s *S3Server) MakeBucket(ctx context.Context, locking bool) (string, error) {
	c, err := s.NewClient()
	if err != nil {
		return "", err
	}
	name := "insightops-" + strings.ToLower(RandomSuffix())
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region, ObjectLocking: locking}); err != nil {
		return "", fmt.Errorf("make bucket %s: %w", name, err)
	}
	return name, nil
}

// ClosedEndpoint returns the URL of a loopback port nothing listens on.
func ClosedEndpoint(t testing.TB) string {
	t.Helper()
	l, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	return "http://" + addr
}
