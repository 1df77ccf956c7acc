package testkit

import (
	"fmt"
	"net"
	"testing"
)

// FreeAddr returns a loopback address, "127.0.0.1:<port>", whose port was
// free a moment ago, for a server the test starts that must be told its
// address beforehand (API_ADDR, say). Nothing holds the port afterwards,
// so another process may take it meanwhile. The test fails when no port
// can be had.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := listenLoopback()
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePorts returns n distinct loopback ports that were free a moment ago:
// each stays taken until all n are picked, so none is handed out twice.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := listenLoopback()
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// listenLoopback listens on a port of 127.0.0.1 the kernel picks.
func listenLoopback() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("free port: %w", err)
	}
	return l, nil
}
