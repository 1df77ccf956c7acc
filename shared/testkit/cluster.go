package testkit

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/bus"
)

// ClusterSize is the number of nodes StartCluster runs.
const ClusterSize = 3

// ClusterReadyTimeout bounds how long StartCluster, RestartNode and the
// Wait helpers wait: generous, since tests share two cores.
const ClusterReadyTimeout = 60 * time.Second

// Cluster is a real 3-node JetStream cluster running in the test process:
// distinct server names, one cluster name, routes and client listeners on
// free loopback ports, a file store per node under t.TempDir(). A node can
// be shut down and restarted with the same name, ports and store, so it
// rejoins and catches up.
type Cluster struct {
	// Name is the cluster name every node shares.
	Name string

	t     testing.TB
	mu    sync.Mutex
	nodes []*clusterNode
}

type clusterNode struct {
	opts *server.Options
	srv  *server.Server // nil while shut down
}

// StartCluster starts three clustered JetStream nodes and waits until a
// meta leader exists and every node's JetStream is current. The nodes are
// shut down when the test ends. With TESTKIT_NATS_LOG_DIR set, each node
// logs (notices and warnings: catch-ups, WAL resets, snapshots) to
// <server name>.log in that directory, for diagnosing a failed run.
func StartCluster(t testing.TB, options ...ClusterOption) *Cluster {
	t.Helper()
	suffix := RandomSuffix()
	c := &Cluster{Name: "insightops-test-" + suffix, t: t}
	clientPorts := freePorts(t, ClusterSize)
	routePorts := freePorts(t, ClusterSize)
	routes := make([]string, ClusterSize)
	for i, p := range routePorts {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}
	base := t.TempDir()
	for i := range ClusterSize {
		var others []string
		for j, r := range routes {
			if j != i {
				others = append(others, r)
			}
		}
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d-%s", i, suffix),
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			JetStream:  true,
			StoreDir:   filepath.Join(base, fmt.Sprintf("n%d", i)),
			NoSigs:     true,
			NoLog:      true,
			Cluster: server.ClusterOpts{
				Name: c.Name,
				Host: "127.0.0.1",
				Port: routePorts[i],
			},
			Routes: server.RoutesFromStr(strings.Join(others, ",")),
		}
		for _, o := range options {
			o(&opts.Cluster)
		}
		c.nodes = append(c.nodes, &clusterNode{opts: opts})
	}
	t.Cleanup(c.shutdownAll)
	for i := range c.nodes {
		if err := c.start(i); err != nil {
			t.Fatalf("cluster: %v", err)
		}
	}
	if err := c.WaitReady(ClusterReadyTimeout); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	return c
}

// ClusterOption adjusts the route settings of every node StartCluster
// starts.
type ClusterOption func(*server.ClusterOpts)

// WithRouteTLS makes the nodes' routes TLS with tc (the cluster block's
// tls of a configuration file, e.g. deploy/nats/nats-server.conf, as
// server.ProcessConfigFile parsed it: with verify, mutual TLS) and its
// handshake timeout in seconds. The certificates must name 127.0.0.1.
func WithRouteTLS(tc *tls.Config, timeout float64) ClusterOption {
	return func(o *server.ClusterOpts) {
		o.TLSConfig, o.TLSTimeout = tc, timeout
	}
}

func (c *Cluster) start(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[i]
	if n.srv != nil {
		return fmt.Errorf("node %d is already running", i)
	}
	// NewServer may adjust the options it is given: start from a copy.
	opts := n.opts.Clone()
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("node %d (%s): %w", i, n.opts.ServerName, err)
	}
	if dir := os.Getenv("TESTKIT_NATS_LOG_DIR"); dir != "" {
		opts.NoLog, opts.LogFile, opts.Logtime = false, filepath.Join(dir, opts.ServerName+".log"), true
		srv.ConfigureLogger()
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("node %d (%s): not ready for connections on port %d within 30s", i, n.opts.ServerName, n.opts.Port)
	}
	n.srv = srv
	return nil
}

func (c *Cluster) shutdownAll() {
	for i := range c.nodes {
		c.ShutdownNode(i)
	}
}

// Size is the number of nodes.
func (c *Cluster) Size() int { return len(c.nodes) }

// ClientURLs are the client URLs of every node, running or not.
func (c *Cluster) ClientURLs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port)
	}
	return out
}

// URL is ClientURLs joined by commas, as NATS_URL takes them.
func (c *Cluster) URL() string { return strings.Join(c.ClientURLs(), ",") }

// ServerName is the name of node i.
func (c *Cluster) ServerName(i int) string { return c.nodes[i].opts.ServerName }

// Server returns node i, or nil while it is shut down.
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].srv
}

// Running reports whether node i is up.
func (c *Cluster) Running(i int) bool { return c.Server(i) != nil }

// ShutdownNode stops node i (a no-op when it is already down) and waits
// for it to be gone.
func (c *Cluster) ShutdownNode(i int) {
	c.mu.Lock()
	srv := c.nodes[i].srv
	c.nodes[i].srv = nil
	c.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Shutdown()
	srv.WaitForShutdown()
}

// RestartNode starts node i again with the same name, ports and store
// directory, so it rejoins the cluster and catches up, and waits until its
// JetStream is current with the meta leader.
func (c *Cluster) RestartNode(i int) error { return c.RestartNodes(i) }

// RestartNodes starts the given nodes again (see RestartNode) and then
// waits until the cluster has a meta leader and every running node is
// current: restarting a whole cluster needs its majority up before
// anything can be current.
func (c *Cluster) RestartNodes(nodes ...int) error {
	for _, i := range nodes {
		if err := c.start(i); err != nil {
			return err
		}
	}
	return c.WaitReady(ClusterReadyTimeout)
}

// WaitReady waits until a meta leader exists and every running node's
// JetStream is current.
func (c *Cluster) WaitReady(timeout time.Duration) error {
	return Poll(timeout, func() error {
		leader := false
		for i := range c.nodes {
			srv := c.Server(i)
			if srv == nil {
				continue
			}
			if !srv.JetStreamEnabled() {
				return fmt.Errorf("node %d: JetStream not enabled yet", i)
			}
			if srv.JetStreamIsLeader() {
				leader = true
			}
			if !srv.JetStreamIsCurrent() {
				return fmt.Errorf("node %d: JetStream meta layer not current", i)
			}
		}
		if !leader {
			return errors.New("no JetStream meta leader")
		}
		return nil
	})
}

// Connect opens a client connection to every node's URL that reconnects
// forever, closed when the test ends.
func (c *Cluster) Connect(t testing.TB, name string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.URL(), nats.Name(name), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatalf("connect to cluster: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Provision creates every stream and bucket of the contract with three
// replicas (bus.Attach with Settings{Replicas: 3}) on nc, then runs each
// of extra with the bus's JetStream context. The BACKUPS object store is
// made that way — extra is func(ctx, js) error { _, err :=
// backupstore.NewNATS(ctx, js, 3); return err } — because backupstore's own
// tests import testkit, so testkit cannot import backupstore.
func (c *Cluster) Provision(t testing.TB, nc *nats.Conn, extra ...func(context.Context, jetstream.JetStream) error) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ClusterReadyTimeout)
	defer cancel()
	var b *bus.Bus
	// The meta leader may still be settling right after start: retry.
	err := Poll(ClusterReadyTimeout, func() error {
		var err error
		b, err = bus.Attach(ctx, nc, bus.Settings{Replicas: ClusterSize}, true, Logger(t))
		return err
	})
	if err != nil {
		t.Fatalf("provision cluster: %v", err)
	}
	for _, f := range extra {
		if err := Poll(ClusterReadyTimeout, func() error { return f(ctx, b.JS) }); err != nil {
			t.Fatalf("provision cluster: %v", err)
		}
	}
	return b
}

// ClusterAccount is the account the test cluster's streams live in.
const ClusterAccount = server.DEFAULT_GLOBAL_ACCOUNT

// StreamLeader returns the index of the node leading stream (a KV
// bucket's stream is "KV_<bucket>", an object store's "OBJ_<bucket>"), or
// -1 when none leads it right now.
func (c *Cluster) StreamLeader(stream string) int {
	for i := range c.nodes {
		if srv := c.Server(i); srv != nil && srv.JetStreamIsStreamLeader(ClusterAccount, stream) {
			return i
		}
	}
	return -1
}

// WaitStreamLeader waits until some running node leads stream and returns it.
func (c *Cluster) WaitStreamLeader(stream string, timeout time.Duration) (int, error) {
	leader := -1
	err := Poll(timeout, func() error {
		if leader = c.StreamLeader(stream); leader < 0 {
			return fmt.Errorf("stream %s has no leader", stream)
		}
		return nil
	})
	return leader, err
}

// StreamState is node i's own view of stream: its local store's state.
func (c *Cluster) StreamState(i int, stream string) (server.StreamState, error) {
	d, err := c.streamDetail(i, stream, false)
	return d.State, err
}

// streamDetail is node i's own replica of stream, from its JetStream
// monitoring (Jsz), with its consumers when asked.
func (c *Cluster) streamDetail(i int, stream string, consumers bool) (server.StreamDetail, error) {
	srv := c.Server(i)
	if srv == nil {
		return server.StreamDetail{}, fmt.Errorf("node %d is down", i)
	}
	acc, err := srv.JszAccount(&server.JSzOptions{Account: ClusterAccount, Streams: true, Consumer: consumers})
	if err != nil {
		return server.StreamDetail{}, fmt.Errorf("node %d jsz: %w", i, err)
	}
	for _, s := range acc.Streams {
		if s.Name == stream {
			return s, nil
		}
	}
	return server.StreamDetail{}, fmt.Errorf("node %d has no replica of stream %s", i, stream)
}

// WaitStreamCurrent waits until stream has a leader and every running
// node holds a current replica whose state (messages, bytes, first and
// last sequence) equals the leader's.
func (c *Cluster) WaitStreamCurrent(stream string, timeout time.Duration) error {
	return Poll(timeout, func() error {
		leader := c.StreamLeader(stream)
		if leader < 0 {
			return fmt.Errorf("stream %s has no leader", stream)
		}
		want, err := c.StreamState(leader, stream)
		if err != nil {
			return err
		}
		for i := range c.nodes {
			srv := c.Server(i)
			if srv == nil || i == leader {
				continue
			}
			if !srv.JetStreamIsStreamCurrent(ClusterAccount, stream) {
				return fmt.Errorf("stream %s: node %d not current", stream, i)
			}
			have, err := c.StreamState(i, stream)
			if err != nil {
				return err
			}
			if !SameStreamState(have, want) {
				return fmt.Errorf("stream %s: node %d has msgs %d seq %d..%d, leader node %d has msgs %d seq %d..%d",
					stream, i, have.Msgs, have.FirstSeq, have.LastSeq, leader, want.Msgs, want.FirstSeq, want.LastSeq)
			}
		}
		return nil
	})
}

// SameStreamState compares what a replica holds: message and byte counts
// and the first and last sequence.
func SameStreamState(a, b server.StreamState) bool {
	return a.Msgs == b.Msgs && a.Bytes == b.Bytes && a.FirstSeq == b.FirstSeq && a.LastSeq == b.LastSeq
}

// Poll calls f every 100 ms until it returns nil or timeout passes,
// returning f's last error then.
func Poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ConsumerStates is node i's own view of every consumer of stream, by
// name: its local replica's delivered and ack floor sequences and pending
// counts.
func (c *Cluster) ConsumerStates(i int, stream string) (map[string]*server.ConsumerInfo, error) {
	d, err := c.streamDetail(i, stream, true)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*server.ConsumerInfo, len(d.Consumer))
	for _, ci := range d.Consumer {
		out[ci.Name] = ci
	}
	return out, nil
}

// DescribeStream is one line per running node: its replica of stream
// (messages, first and last sequence, deleted count) and of each of the
// stream's consumers (delivered and ack floor stream sequences, pending),
// for a failure message.
func (c *Cluster) DescribeStream(stream string) string {
	var b strings.Builder
	leader := c.StreamLeader(stream)
	for i := range c.nodes {
		st, err := c.StreamState(i, stream)
		if err != nil {
			fmt.Fprintf(&b, "\n  node %d: %v", i, err)
			continue
		}
		mark := ""
		if i == leader {
			mark = " (leader)"
		}
		fmt.Fprintf(&b, "\n  node %d%s %s: msgs %d seq %d..%d deleted %d", i, mark, stream, st.Msgs, st.FirstSeq, st.LastSeq, st.NumDeleted)
		cs, _ := c.ConsumerStates(i, stream)
		for _, n := range slices.Sorted(maps.Keys(cs)) {
			ci := cs[n]
			fmt.Fprintf(&b, "; %s delivered %d/%d ackfloor %d pending %d ackpending %d redelivered %d",
				n, ci.Delivered.Stream, ci.Delivered.Consumer, ci.AckFloor.Stream, ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
		}
	}
	return b.String()
}

// StepDownStream asks the current leader of stream to step down in
// favour of node to (the JetStream API's leader step-down with a
// preferred placement) and waits until node to leads it.
func (c *Cluster) StepDownStream(stream string, to int, timeout time.Duration) error {
	nc, err := nats.Connect(c.URL(), nats.Name("testkit-stepdown")) // any running node
	if err != nil {
		return fmt.Errorf("step down %s: connect: %w", stream, err)
	}
	defer nc.Close()
	req, _ := json.Marshal(server.JSApiLeaderStepdownRequest{Placement: &server.Placement{Preferred: c.ServerName(to)}})
	return Poll(timeout, func() error {
		if c.StreamLeader(stream) == to {
			return nil
		}
		msg, err := nc.Request(fmt.Sprintf(server.JSApiStreamLeaderStepDownT, stream), req, 5*time.Second)
		if err != nil {
			return fmt.Errorf("step down %s: %w", stream, err)
		}
		var resp server.JSApiStreamLeaderStepDownResponse
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			return fmt.Errorf("step down %s: %w", stream, err)
		}
		if resp.Error != nil {
			return fmt.Errorf("step down %s to node %d: %v", stream, to, resp.Error)
		}
		time.Sleep(500 * time.Millisecond)
		if l := c.StreamLeader(stream); l != to {
			return fmt.Errorf("stream %s leader is node %d, want node %d", stream, l, to)
		}
		return nil
	})
}
