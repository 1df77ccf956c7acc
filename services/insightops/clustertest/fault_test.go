package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/reliability"
	"github.com/insightops/insightops/shared/testkit"
)

// setup describes what the fault tests run on.
const setup = "3-node JetStream cluster (nats-server/v2 in process), every stream, bucket and BACKUPS R3; " +
	"API + audit sink, 2 replicas of each worker kind (init, backup, restore, chroma), each on its own connection to all three nodes; " +
	"System DB on PostgreSQL 15, real Chroma"

// submitters is how many clients submit at once.
const submitters = 8

// submitBound is how long one client keeps retrying a submission.
const submitBound = 3 * time.Minute

// streamsToCheck are the streams whose replicas must agree after a fault.
var streamsToCheck = []string{bus.StreamJobs, bus.StreamAudit, "KV_" + bus.BucketJobs, "OBJ_" + bus.BucketBackups}

// pruneJob is a cheap real job: a retention dry run lists the archives of
// the R3 BACKUPS object store and writes its result.
func pruneJob(key string) *submission {
	return &submission{Key: key, Path: "/admin/db/backup/prune", Body: map[string]any{"dry_run": true}, Kind: jobs.KindBackupPrune}
}

// backupJob is a real backup of every component into BACKUPS.
func backupJob(key string) *submission {
	return &submission{Key: key, Path: "/admin/db/backup", Body: map[string]any{"note": key}, Kind: jobs.KindBackupCreate}
}

// submitAll submits subs with submitters concurrent clients, calling
// progress after each 202 with the number done so far.
func (e *env) submitAll(ctx context.Context, subs []*submission, progress func(done int)) {
	e.t.Helper()
	next := make(chan *submission)
	var done atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < submitters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range next {
				// A submission that gets no 202 within this bound is a
				// failure, not a hung test.
				sctx, cancel := context.WithTimeout(ctx, submitBound)
				err := e.submit(sctx, s)
				cancel()
				if err != nil {
					e.t.Errorf("submit: %v", err)
				}
				n := done.Add(1)
				if progress != nil {
					progress(int(n))
				}
			}
		}()
	}
	for _, s := range subs {
		next <- s
	}
	close(next)
	wg.Wait()
}

// result turns an outcome into the reliability record and reports every
// loss or duplicate as a test error.
func (e *env) result(t *testing.T, name, fault string, subs []*submission, o outcome, took time.Duration, notes []string) {
	t.Helper()
	f := &reliability.Fault{Name: name, Fault: fault, Setup: setup, Submitted: len(subs), Lost: len(o.lost), Duration: took}
	for _, st := range o.states {
		switch st {
		case jobs.Succeeded:
			f.Succeeded++
		case jobs.Failed:
			f.Failed++
		case jobs.Cancelled:
			f.Cancelled++
		}
	}
	// A job ran its side effect twice when its KV history holds two
	// terminal writes, its terminal audit event is there twice, or (a
	// backup) two archives carry its id.
	dup := map[string]bool{}
	for _, s := range o.terminal2 {
		dup[strings.Fields(s)[0]] = true
	}
	for _, s := range o.auditDup {
		if !strings.Contains(s, ".requested") {
			dup[strings.Fields(s)[0]] = true
		}
	}
	backups, archivesOK := 0, 0
	for id, n := range o.archives {
		backups++
		if n > 1 {
			dup[id] = true
		}
		if n == 1 {
			archivesOK++
		} else if o.states[id] == jobs.Succeeded {
			t.Errorf("backup job %s succeeded with %d archives, want exactly 1", id, n)
		}
	}
	f.Duplicated = len(dup)
	f.AuditExpected = 2 * len(subs)
	f.AuditFound = o.auditSeen
	f.AuditDuplicated = o.auditDupID + len(o.auditDup)
	tries, unavailable, conflicts := 0, 0, 0
	for _, s := range subs {
		tries += s.Tries
		unavailable += s.Unavailable
		conflicts += s.Conflicts
	}
	f.Notes = append([]string{
		fmt.Sprintf("%d POSTs for %d jobs (%d answered 503, %d answered 409 lease held; retried with the same Idempotency-Key)", tries, len(subs), unavailable, conflicts),
		fmt.Sprintf("%d backup.create jobs, %d with exactly one archive in BACKUPS", backups, archivesOK),
		fmt.Sprintf("%d events in AUDIT; every job's requested and final event looked up by (job_id, action)", o.auditTotal),
		fmt.Sprintf("%d requested events marked replayed (a retry after a 503 whose command had been stored)", o.replayed),
	}, notes...)
	reliability.Write(t, reliability.Result{Fault: f})

	if len(o.lost) > 0 {
		sort.Strings(o.lost)
		t.Errorf("%d jobs lost (no final state): %v", len(o.lost), first(o.lost, 10))
	}
	if f.Succeeded != len(subs) {
		var bad []string
		for id, st := range o.states {
			if st != jobs.Succeeded {
				bad = append(bad, id+" "+string(st))
			}
		}
		sort.Strings(bad)
		t.Errorf("%d of %d jobs succeeded; others: %v", f.Succeeded, len(subs), first(bad, 10))
	}
	if f.Duplicated > 0 {
		t.Errorf("%d jobs ran their side effect twice: terminal writes %v, audit %v", f.Duplicated, first(o.terminal2, 10), first(o.auditDup, 10))
	}
	if o.auditDupID > 0 {
		t.Errorf("%d audit events stored twice under the same id", o.auditDupID)
	}
	if len(o.auditDup) > 0 {
		t.Errorf("audit events there more than once: %v", first(o.auditDup, 10))
	}
	if len(o.auditMiss) > 0 {
		t.Errorf("%d audit events missing: %v", len(o.auditMiss), first(o.auditMiss, 10))
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… %d more", len(s)-n))
	}
	return s
}

// caughtUp waits until every replica of the checked streams equals its
// leader's and describes node i's state. For JOBS it first moves the
// stream's leadership to node i (see moveJobsLeader).
func (e *env) caughtUp(t *testing.T, i int) []string {
	t.Helper()
	var notes []string
	for _, name := range streamsToCheck {
		start := time.Now()
		var moved *jobsMove
		if name == bus.StreamJobs {
			if moved = e.moveJobsLeader(t, i); moved == nil {
				continue
			}
		}
		if err := e.cluster.WaitStreamCurrent(name, 3*testkit.ClusterReadyTimeout); err != nil {
			t.Errorf("node %d did not catch up: %v%s", i, err, e.cluster.DescribeStream(name))
			continue
		}
		if moved != nil {
			notes = append(notes, e.checkJobsMove(t, i, moved))
		}
		leader := e.cluster.StreamLeader(name)
		have, err := e.cluster.StreamState(i, name)
		if err != nil {
			t.Errorf("stream %s on node %d: %v", name, i, err)
			continue
		}
		want, err := e.cluster.StreamState(leader, name)
		if err != nil {
			t.Errorf("stream %s on leader %d: %v", name, leader, err)
			continue
		}
		if !testkit.SameStreamState(have, want) {
			t.Errorf("stream %s: node %d %+v, leader %d %+v", name, i, have, leader, want)
		}
		notes = append(notes, fmt.Sprintf("node %s %s: msgs %d seq %d..%d = leader %s (current after %s more)",
			e.cluster.ServerName(i), name, have.Msgs, have.FirstSeq, have.LastSeq, e.cluster.ServerName(leader), time.Since(start).Round(time.Millisecond)))
	}
	return notes
}

// TestFaultLeaderShutdown submits jobs through the API while the node
// leading the JOBS stream is shut down (after a third of the submissions)
// and started again (after two thirds). Every job must reach a final
// state once: one terminal write in its KV history, one requested and one
// final audit event, one archive per backup; and the restarted node must
// hold the same JOBS, AUDIT, JOB_PROGRESS and BACKUPS state as the leader.
func TestFaultLeaderShutdown(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	n, minDown := 1000, 5*time.Second
	if reliability.Full() {
		n, minDown = 3000, 20*time.Second
	}
	var downFor time.Duration
	const backupEvery = 250
	subs := make([]*submission, n)
	for i := range subs {
		key := fmt.Sprintf("leader-shutdown-%d", i)
		if i%backupEvery == backupEvery/2 {
			subs[i] = backupJob(key)
		} else {
			subs[i] = pruneJob(key)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	down := -1
	var led []string
	shutdown, restart := make(chan struct{}), make(chan struct{})
	var once1, once2 sync.Once
	faultDone := make(chan error, 1)
	go func() {
		select {
		case <-shutdown:
		case <-ctx.Done():
			faultDone <- ctx.Err()
			return
		}
		leader, err := e.cluster.WaitStreamLeader(bus.StreamJobs, testkit.ClusterReadyTimeout)
		if err != nil {
			faultDone <- err
			return
		}
		for _, s := range []string{bus.StreamJobs, bus.StreamAudit, "KV_" + bus.BucketJobs, "KV_" + bus.BucketLocks, "OBJ_" + bus.BucketBackups} {
			if e.cluster.StreamLeader(s) == leader {
				led = append(led, s)
			}
		}
		down = leader
		t.Logf("shutting down node %s, leader of %v", e.cluster.ServerName(leader), led)
		e.cluster.ShutdownNode(leader)
		downAt := time.Now()
		select {
		case <-restart:
		case <-ctx.Done():
			faultDone <- ctx.Err()
			return
		}
		// Stay down for minDown at least, whatever the submission pace.
		select {
		case <-time.After(time.Until(downAt.Add(minDown))):
		case <-ctx.Done():
		}
		downFor = time.Since(downAt)
		t.Logf("restarting node %s after %s", e.cluster.ServerName(leader), downFor.Round(time.Millisecond))
		faultDone <- e.cluster.RestartNode(leader)
	}()

	start := time.Now()
	e.submitAll(ctx, subs, func(done int) {
		if done >= n/3 {
			once1.Do(func() { close(shutdown) })
		}
		if done >= 2*n/3 {
			once2.Do(func() { close(restart) })
		}
	})
	if err := <-faultDone; err != nil {
		t.Fatalf("fault injection: %v", err)
	}
	submitted := time.Since(start)
	o := e.check(ctx, subs, 5*time.Minute)
	took := time.Since(start)
	notes := []string{fmt.Sprintf("all %d submitted in %s, all final after %s", n, submitted.Round(time.Millisecond), took.Round(time.Millisecond))}
	notes = append(notes, e.caughtUp(t, down)...)
	e.result(t, reliability.FaultLeaderShutdown,
		fmt.Sprintf("node leading %v shut down after %d of %d submissions, restarted after %d and %s down", led, n/3, n, 2*n/3, downFor.Round(time.Millisecond)),
		subs, o, took, notes)
}

// TestFaultNATSUnreachable shuts down all three nodes while jobs are
// queued: the API must answer submissions 503 within a bound (not hang,
// not 500), GET /ready must fail and /health keep answering; once the
// nodes are back, the API and the workers reconnect by themselves, and
// the jobs queued before the outage, the submissions refused during it
// (retried with their Idempotency-Key) and new ones all complete once.
func TestFaultNATSUnreachable(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	nBefore, nAfter, outage := 200, 200, 10*time.Second
	if reliability.Full() {
		nBefore, nAfter, outage = 1000, 1000, 30*time.Second
	}
	const maxAnswer = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()

	var subs []*submission
	before := make([]*submission, nBefore)
	for i := range before {
		before[i] = pruneJob(fmt.Sprintf("unreachable-before-%d", i))
	}
	before[nBefore/2] = backupJob("unreachable-before-backup")
	e.submitAll(ctx, before, nil)
	subs = append(subs, before...)

	queued := 0
	st := jobs.NewStore(e.api.Jobs)
	for _, s := range before {
		if rec, _, err := st.Get(ctx, s.ID); err == nil && !rec.State.Final() {
			queued++
		}
	}
	for i := 0; i < e.cluster.Size(); i++ {
		e.cluster.ShutdownNode(i)
	}
	downAt := time.Now()
	t.Logf("all nodes down; %d of %d jobs submitted before were not final yet", queued, nBefore)

	// During the outage: submissions are refused quickly, readiness fails,
	// liveness holds.
	var refused []*submission
	var slowest time.Duration
	for i := 0; time.Since(downAt) < outage || i < 3; i++ {
		s := pruneJob(fmt.Sprintf("unreachable-during-%d", i))
		t0 := time.Now()
		var a accepted
		code, err := e.call(http.MethodPost, s.Path, s.Key, s.Body, &a)
		took := time.Since(t0)
		slowest = max(slowest, took)
		s.Tries++
		if err != nil {
			t.Fatalf("POST during outage: %v (after %s): the API must answer", err, took)
		}
		if code != http.StatusServiceUnavailable {
			t.Errorf("POST during outage: %d, want 503", code)
		} else {
			s.Unavailable++
		}
		if took > maxAnswer {
			t.Errorf("POST during outage took %s, want < %s", took, maxAnswer)
		}
		refused = append(refused, s)
		code, err = e.call(http.MethodGet, "/ready", "", nil, nil)
		if err != nil || code != http.StatusServiceUnavailable {
			t.Errorf("GET /ready during outage: %d %v, want 503", code, err)
		}
		if code, err := e.call(http.MethodGet, "/health", "", nil, nil); err != nil || code != http.StatusOK {
			t.Errorf("GET /health during outage: %d %v, want 200", code, err)
		}
		time.Sleep(500 * time.Millisecond)
	}

	all := make([]int, e.cluster.Size())
	for i := range all {
		all[i] = i
	}
	if err := e.cluster.RestartNodes(all...); err != nil {
		t.Fatalf("restart cluster: %v", err)
	}
	upAt := time.Now()
	t.Logf("cluster back after %s down", upAt.Sub(downAt).Round(time.Millisecond))

	// The clients whose submissions were refused retry with their keys;
	// new clients come.
	after := make([]*submission, nAfter)
	for i := range after {
		after[i] = pruneJob(fmt.Sprintf("unreachable-after-%d", i))
	}
	after[nAfter/2] = backupJob("unreachable-after-backup")
	retry := append(append([]*submission{}, refused...), after...)
	e.submitAll(ctx, retry, nil)
	subs = append(subs, retry...)
	firstAccepted := time.Since(upAt)

	var readyAfter time.Duration
	for {
		if code, err := e.call(http.MethodGet, "/ready", "", nil, nil); err == nil && code == http.StatusOK {
			readyAfter = time.Since(upAt)
			break
		}
		if time.Since(upAt) > 2*time.Minute {
			t.Errorf("GET /ready still failing 2 minutes after the cluster came back")
			break
		}
		time.Sleep(250 * time.Millisecond)
	}

	o := e.check(ctx, subs, 5*time.Minute)
	took := time.Since(start)
	notes := []string{
		fmt.Sprintf("%d jobs submitted before the outage, %d not final when all nodes went down", nBefore, queued),
		fmt.Sprintf("%d POSTs during the %s outage: all answered, slowest in %s (bound %s)", len(refused), upAt.Sub(downAt).Round(time.Millisecond), slowest.Round(time.Millisecond), maxAnswer),
		fmt.Sprintf("after restart: %d refused + %d new submissions accepted within %s, /ready ok after %s", len(refused), nAfter, firstAccepted.Round(time.Millisecond), readyAfter.Round(time.Millisecond)),
	}
	notes = append(notes, e.caughtUp(t, 0)...)
	e.result(t, reliability.FaultNATSUnreachable,
		fmt.Sprintf("all three nodes shut down for %s with jobs queued, then started again (same names, ports, stores)", upAt.Sub(downAt).Round(time.Second)),
		subs, o, took, notes)
}

// A restarted node's replica of JOBS, a work-queue stream, can keep
// messages the leader has already removed. In nats-server 2.15 only the
// stream leader removes acknowledged messages: stream.ackMsg
// (server/stream.go:9434-9460 at v2.15.2) proposes a delete when it is
// the leader and returns without removing anything on a follower, so a
// follower's own interest checks never clean its replica, and a delete
// entry applied before the replica holds the message is dropped
// (server/jetstream_cluster.go:5773-5779). What repairs it is the node
// becoming leader: stream.setLeader runs checkInterestState
// (server/stream.go:1500-1502), whose consumer walk
// (consumer.checkStateForInterestStream, server/consumer.go:7236-7271)
// starts at the replica's first sequence and proposes a delete for every
// message at or below each consumer's ack floor; on a follower ackMsg
// reports those as removed-to-retry, so the walk's floor stays at them
// (consumer.go:7255-7260). Consumers deliver from their own delivered
// sequence, not from what a replica holds, so such messages are never
// handed to a worker again.
//
// What matters is therefore not that the replica equals the leader's by
// itself, but that the restarted node can lead JOBS without any job being
// redelivered and that every replica then converges. moveJobsLeader and
// checkJobsMove check exactly that, on every run.

// jobsMove is the state moveJobsLeader saw before moving JOBS leadership.
type jobsMove struct {
	deliveries map[string]uint64 // per consumer, the highest consumer sequence delivered
	differed   string            // how node i's replica differed from the leader's, or ""
}

// consumerSettled is nil once every consumer of stream, on its own
// leader, has nothing pending and nothing awaiting an ack.
func (e *env) consumerSettled(stream string) error {
	leader := e.cluster.StreamLeader(stream)
	if leader < 0 {
		return fmt.Errorf("stream %s has no leader", stream)
	}
	for i := 0; i < e.cluster.Size(); i++ {
		cs, err := e.cluster.ConsumerStates(i, stream)
		if err != nil {
			if !e.cluster.Running(i) {
				continue
			}
			return err
		}
		for n, ci := range cs {
			if ci.Cluster == nil || ci.Cluster.Leader != e.cluster.ServerName(i) {
				continue
			}
			if ci.NumPending > 0 || ci.NumAckPending > 0 {
				return fmt.Errorf("consumer %s on its leader node %d: %d pending, %d awaiting ack", n, i, ci.NumPending, ci.NumAckPending)
			}
		}
	}
	return nil
}

// consumerDeliveries is, per consumer of stream, the highest consumer
// sequence any replica has recorded: it grows with every delivery,
// redeliveries included.
func (e *env) consumerDeliveries(t *testing.T, stream string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for i := 0; i < e.cluster.Size(); i++ {
		cs, err := e.cluster.ConsumerStates(i, stream)
		if err != nil {
			if e.cluster.Running(i) {
				t.Errorf("consumers of %s on node %d: %v", stream, i, err)
			}
			continue
		}
		for n, ci := range cs {
			out[n] = max(out[n], ci.Delivered.Consumer)
		}
	}
	return out
}

// moveJobsLeader waits until every job delivery is settled (all jobs are
// final by now; an ack lost in the fault is redelivered after AckWait and
// acknowledged by a worker that finds the job final), records each
// consumer's deliveries and whether node i's JOBS replica differs from
// the leader's, and moves JOBS leadership to node i. It returns nil after
// reporting an error.
func (e *env) moveJobsLeader(t *testing.T, i int) *jobsMove {
	t.Helper()
	settled := testkit.Poll(testkit.ClusterReadyTimeout, func() error { return e.consumerSettled(bus.StreamJobs) })
	if settled != nil {
		t.Errorf("JOBS deliveries not settled: %v%s", settled, e.cluster.DescribeStream(bus.StreamJobs))
		return nil
	}
	m := &jobsMove{deliveries: e.consumerDeliveries(t, bus.StreamJobs)}
	if err := e.cluster.WaitStreamCurrent(bus.StreamJobs, 5*time.Second); err != nil {
		m.differed = err.Error()
		t.Logf("before moving JOBS leadership to node %d: %v%s", i, err, e.cluster.DescribeStream(bus.StreamJobs))
	}
	if err := e.cluster.StepDownStream(bus.StreamJobs, i, testkit.ClusterReadyTimeout); err != nil {
		t.Errorf("move JOBS leadership to node %d: %v", i, err)
		return nil
	}
	return m
}

// checkJobsMove, once the replicas agree again, checks that leading JOBS
// from node i delivered nothing more and left nothing pending, and
// describes what happened.
func (e *env) checkJobsMove(t *testing.T, i int, m *jobsMove) string {
	t.Helper()
	// A redelivery would show up as a pending or unacknowledged message
	// first, or as a higher consumer sequence.
	time.Sleep(time.Second)
	if err := e.consumerSettled(bus.StreamJobs); err != nil {
		t.Errorf("after moving JOBS leadership to node %d: %v", i, err)
	}
	after := e.consumerDeliveries(t, bus.StreamJobs)
	for n, d := range after {
		if d != m.deliveries[n] {
			t.Errorf("after moving JOBS leadership to node %d, consumer %s delivered %d more messages (sequence %d, was %d)", i, n, d-m.deliveries[n], d, m.deliveries[n])
		}
	}
	if m.differed != "" {
		return fmt.Sprintf("node %s's JOBS replica differed from the leader's before it led JOBS (%s); equal after, nothing redelivered",
			e.cluster.ServerName(i), m.differed)
	}
	return fmt.Sprintf("node %s led JOBS after the fault: nothing redelivered, replicas equal", e.cluster.ServerName(i))
}
