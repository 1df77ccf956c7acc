package testkit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/testkit"
)

func provisionBackups(ctx context.Context, js jetstream.JetStream) error {
	_, err := backupstore.NewNATS(ctx, js, testkit.ClusterSize)
	return err
}

// TestClusterProvisionsEveryStreamAndBucketWithThreeReplicas checks that the
// harness gives a 3-node cluster where JOBS, JOBS_DLQ, AUDIT, the KV
// buckets and the BACKUPS object store are really R3: configured with three
// replicas, led by one node and followed by the two others.
func TestClusterProvisionsEveryStreamAndBucketWithThreeReplicas(t *testing.T) {
	t.Parallel()
	c := testkit.StartCluster(t)
	nc := c.Connect(t, "cluster-test")
	b := c.Provision(t, nc, provisionBackups)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.ClusterReadyTimeout)
	defer cancel()

	streams := []string{
		bus.StreamJobs, bus.StreamDLQ, bus.StreamAudit,
		"KV_" + bus.BucketJobs, "KV_" + bus.BucketLocks, "KV_" + bus.BucketWorkers,
		"OBJ_" + bus.BucketBackups,
	}
	for _, name := range streams {
		t.Run(name, func(t *testing.T) {
			if err := c.WaitStreamCurrent(name, testkit.ClusterReadyTimeout); err != nil {
				t.Fatalf("replicas of %s: %v", name, err)
			}
			st, err := b.JS.Stream(ctx, name)
			if err != nil {
				t.Fatalf("stream %s: %v", name, err)
			}
			info, err := st.Info(ctx)
			if err != nil {
				t.Fatalf("stream %s info: %v", name, err)
			}
			if info.Config.Replicas != testkit.ClusterSize {
				t.Errorf("%s: configured replicas %d, want %d", name, info.Config.Replicas, testkit.ClusterSize)
			}
			if info.Cluster == nil || info.Cluster.Leader == "" {
				t.Fatalf("%s: no cluster leader in %+v", name, info.Cluster)
			}
			if got := len(info.Cluster.Replicas); got != testkit.ClusterSize-1 {
				t.Errorf("%s: %d followers, want %d", name, got, testkit.ClusterSize-1)
			}
			hosts := map[string]bool{info.Cluster.Leader: true}
			for _, r := range info.Cluster.Replicas {
				hosts[r.Name] = true
			}
			for i := 0; i < c.Size(); i++ {
				if !hosts[c.ServerName(i)] {
					t.Errorf("%s: node %s holds no replica (leader %s, followers %+v)", name, c.ServerName(i), info.Cluster.Leader, info.Cluster.Replicas)
				}
			}
			if leader := c.StreamLeader(name); leader < 0 || c.ServerName(leader) != info.Cluster.Leader {
				t.Errorf("%s: StreamLeader says node %d, stream info says %s", name, leader, info.Cluster.Leader)
			}
		})
	}
}

// TestClusterRestartedNodeCatchesUp shuts down the node leading AUDIT,
// keeps publishing through the surviving majority, restarts the node with
// the same name, ports and store, and checks it rejoins and ends with the
// very state of the new leader, every message the cluster acknowledged
// included.
func TestClusterRestartedNodeCatchesUp(t *testing.T) {
	t.Parallel()
	c := testkit.StartCluster(t)
	nc := c.Connect(t, "cluster-test")
	b := c.Provision(t, nc, provisionBackups)
	ctx, cancel := context.WithTimeout(context.Background(), 3*testkit.ClusterReadyTimeout)
	defer cancel()

	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			id := fmt.Sprintf("catch-up-%d", i)
			var err error
			for range 50 {
				// Each try gets its own deadline: an acknowledgement lost
				// with the leader must not use up the whole test's context.
				actx, acancel := context.WithTimeout(ctx, 5*time.Second)
				_, err = b.JS.Publish(actx, "audit.test.caught", []byte(id), jetstream.WithMsgID(id))
				acancel()
				if err == nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("publish %s: %v", id, err)
			}
		}
	}
	const perPhase = 300
	publish(0, perPhase)
	if err := c.WaitStreamCurrent(bus.StreamAudit, testkit.ClusterReadyTimeout); err != nil {
		t.Fatal(err)
	}
	down, err := c.WaitStreamLeader(bus.StreamAudit, testkit.ClusterReadyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.ShutdownNode(down)
	publish(perPhase, 2*perPhase)
	if c.Running(down) {
		t.Fatalf("node %d still running after ShutdownNode", down)
	}
	if err := c.RestartNode(down); err != nil {
		t.Fatalf("restart node %d: %v", down, err)
	}
	if err := c.WaitStreamCurrent(bus.StreamAudit, 2*testkit.ClusterReadyTimeout); err != nil {
		t.Fatalf("restarted node did not catch up: %v", err)
	}
	have, err := c.StreamState(down, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	if have.Msgs != 2*perPhase || have.LastSeq != 2*perPhase {
		t.Errorf("restarted node %d holds %d messages up to seq %d, want %d (every acknowledged publish, once)", down, have.Msgs, have.LastSeq, 2*perPhase)
	}
}
