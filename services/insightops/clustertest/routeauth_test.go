package clustertest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/insightops/insightops/shared/testkit"
)

// TestRouteWithoutCredentialsIsRefused starts the 3-node cluster with the
// route TLS of deploy/nats/nats-server.conf itself (mutual TLS, verify):
// the nodes, holding certificates the CA signed, form the cluster; a
// connection to a route port that presents no certificate — in plain
// text, over TLS without a client certificate, or with a certificate of
// another CA — is closed without a word (no INFO, no PONG) and never joins.
func TestRouteWithoutCredentialsIsRefused(t *testing.T) {
	// Not parallel: sets the environment the shipped nats-server.conf reads.
	files := testkit.TLS(t)
	t.Setenv("NATS_TLS_CERT", files.Cert)
	t.Setenv("NATS_TLS_KEY", files.Key)
	t.Setenv("NATS_TLS_CA", files.CA)
	t.Setenv("NATS_SERVER_NAME", "clustertest")
	for _, u := range []string{"PROVISIONER", "API", "INIT", "BACKUP", "RESTORE", "CHROMA"} {
		t.Setenv("NATS_"+u+"_PASSWORD", "clustertest-"+strings.ToLower(u))
	}
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := server.ProcessConfigFile(filepath.Join(root, "deploy", "nats", "nats-server.conf"))
	if err != nil {
		t.Fatalf("deploy/nats/nats-server.conf: %v", err)
	}
	rt := shipped.Cluster.TLSConfig
	if rt == nil || rt.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("deploy/nats/nats-server.conf: routes are not mutual TLS (cluster tls with verify: true)")
	}
	c := testkit.StartCluster(t, testkit.WithRouteTLS(rt, shipped.Cluster.TLSTimeout)) // waits until the 3 nodes formed the cluster
	routes := c.Server(0).NumRoutes()
	addr := c.Server(0).ClusterAddr().String()

	ca, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	other := testkit.TLS(t) // a certificate of another CA
	otherCert, err := tls.LoadX509KeyPair(other.Cert, other.Key)
	if err != nil {
		t.Fatal(err)
	}
	connect := "CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"name\":\"intruder\",\"cluster\":\"" + c.Name + "\"}\r\nPING\r\n"

	for _, tc := range []struct {
		name string
		tls  *tls.Config // nil: plain text
		want []string    // the refusal: one of these in the read error
	}{
		{"plain text", nil, []string{"EOF", "connection reset"}},
		{"TLS without a client certificate", &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}, []string{"certificate required", "bad certificate"}},
		{"TLS with another CA's certificate", &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{otherCert}}, []string{"unknown certificate authority", "bad certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				t.Fatalf("dial route port %s: %v", addr, err)
			}
			defer raw.Close()
			_ = raw.SetDeadline(time.Now().Add(30 * time.Second))
			// The nodes speak TLS first on routes: nothing is sent before
			// the handshake, so a plain-text peer learns nothing.
			var conn net.Conn = raw
			if tc.tls != nil {
				conn = tls.Client(raw, tc.tls)
			}
			r := bufio.NewReader(conn)
			_, werr := conn.Write([]byte(connect))
			got, rerr := r.ReadString('\n')
			var lines []string
			for rerr == nil && !strings.HasPrefix(got, "PONG") {
				lines = append(lines, got)
				got, rerr = r.ReadString('\n')
			}
			var ne net.Error
			switch {
			case rerr == nil:
				t.Fatalf("the route port answered PONG to a connection without a certificate (after %q)", lines)
			case errors.As(rerr, &ne) && ne.Timeout():
				t.Fatalf("the route port neither refused nor answered within 30s (write: %v)", werr)
			}
			if !slices.ContainsFunc(tc.want, func(w string) bool { return strings.Contains(rerr.Error(), w) }) {
				t.Fatalf("read error %v, want one of %q", rerr, tc.want)
			}
			if len(lines) > 0 {
				t.Fatalf("the route port talked to a connection without a certificate: %q", lines)
			}
			t.Logf("refused: write %v, read %v", werr, rerr)
		})
	}
	if n := c.Server(0).NumRoutes(); n != routes {
		t.Fatalf("node 0 has %d routes, had %d before the attempts", n, routes)
	}
}
