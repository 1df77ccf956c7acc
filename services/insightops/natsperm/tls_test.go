package natsperm

import (
	"bufio"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestShippedNATSConfigRequiresClientTLS: a server started from
// deploy/nats/nats-server.conf refuses a plain-text client (it closes the
// connection) and a TLS client that does not trust its CA; with
// the CA (NATS_CA_FILE) a role connects.
func TestShippedNATSConfigRequiresClientTLS(t *testing.T) {
	// Not parallel: sets process environment variables (t.Setenv) the shipped nats-server.conf reads.
	addr := startFromDeployConfig(t)

	raw, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(raw)
	info, err := r.ReadString('\n')
	if err != nil || !strings.Contains(info, `"tls_required":true`) {
		t.Fatalf("greeting %q (%v): want an INFO requiring TLS", info, err)
	}
	if _, err := raw.Write([]byte("CONNECT {\"user\":\"api\",\"pass\":\"" + testPassword("api") + "\",\"tls_required\":false}\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	// The server expects a TLS handshake: the plain-text CONNECT fails it
	// and the connection is closed without a PONG.
	reply, rerr := r.ReadString('\n')
	if strings.Contains(reply, "PONG") || strings.Contains(reply, "+OK") || rerr == nil {
		t.Fatalf("plain-text CONNECT answered %q (%v), want the connection closed", reply, rerr)
	}
	var ne net.Error
	if errors.As(rerr, &ne) && ne.Timeout() {
		t.Fatalf("plain-text CONNECT neither refused nor answered within 20s")
	}

	_, err = nats.Connect(userURL(addr, "api"), nats.Timeout(10*time.Second), nats.NoReconnect())
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("a client that does not trust the CA: %v, want x509.UnknownAuthorityError", err)
	}

	nc, err := nats.Connect(userURL(addr, "api"), nats.RootCAs(deployCA()), nats.CustomInboxPrefix(inboxPrefix("api")))
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	defer nc.Close()
	if !nc.TLSRequired() {
		t.Fatal("the connection with the CA is not TLS")
	}
}
