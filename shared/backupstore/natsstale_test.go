package backupstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/bus"
)

// staleWorld is a NATS store on its own server and what a test put in it.
type staleWorld struct {
	n    *NATS
	nc   *nats.Conn
	data map[string][]byte // live archives → their bytes
	raw  map[string][]byte // live objects that are not archives → their bytes
	// orphans are chunk subjects no meta refers to, as a killed writer
	// leaves them.
	orphans []string
}

func newStaleWorld(t *testing.T) *staleWorld {
	t.Helper()
	n, b := testNATS(t)
	return &staleWorld{n: n, nc: b.Conn, data: map[string][]byte{}, raw: map[string][]byte{}}
}

// put stores data under name through the store.
func (w *staleWorld) put(ctx context.Context, t *testing.T, name string, data []byte) {
	t.Helper()
	if _, err := w.n.Put(ctx, name, bytes.NewReader(data)); err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
	w.data[name] = data
}

// nuid returns the NUID the meta of name refers to (deleted or not).
func (w *staleWorld) nuid(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	oi, err := w.n.obs.GetInfo(ctx, name, jetstream.GetObjectInfoShowDeleted())
	if err != nil {
		t.Fatalf("info of %s: %v", name, err)
	}
	return oi.NUID
}

// abandon publishes chunks on the chunk subject of nuid with no meta
// referring to it: what a writer killed in the middle of a Put leaves (or
// one killed before purging the chunks of a replaced or deleted object).
func (w *staleWorld) abandon(ctx context.Context, t *testing.T, nuid string, chunks int) {
	t.Helper()
	subj := chunkPrefix + nuid
	for i := range chunks {
		if _, err := w.n.js.Publish(ctx, subj, randomBytes(1000, uint64(i))); err != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
	}
	w.orphans = append(w.orphans, subj)
}

// chunkSubjects returns the bucket's chunk subjects and their message counts.
func chunkSubjects(ctx context.Context, t *testing.T, n *NATS) map[string]uint64 {
	t.Helper()
	s, err := n.js.Stream(ctx, streamBackups)
	if err != nil {
		t.Fatal(err)
	}
	si, err := s.Info(ctx, jetstream.WithSubjectFilter(chunkPrefix+">"))
	if err != nil {
		t.Fatal(err)
	}
	return si.State.Subjects
}

// check asserts that the bucket holds the chunks of the live objects (all
// of them, and each reads back byte-identical) plus the orphans if kept,
// and nothing else.
func (w *staleWorld) check(ctx context.Context, t *testing.T, orphansKept bool) {
	t.Helper()
	want := map[string]uint64{}
	for name, data := range w.data {
		oi, err := w.n.obs.GetInfo(ctx, name)
		if err != nil {
			t.Fatalf("info of %s: %v", name, err)
		}
		want[chunkPrefix+oi.NUID] = uint64(oi.Chunks)
		rc, info, err := w.n.Open(ctx, name)
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) || info.SHA256 != sha(data) {
			t.Fatalf("%s reads back %d bytes (sha %s), %v; want %d bytes (sha %s)", name, len(got), info.SHA256, err, len(data), sha(data))
		}
	}
	for name, data := range w.raw {
		oi, err := w.n.obs.GetInfo(ctx, name)
		if err != nil {
			t.Fatalf("info of %s: %v", name, err)
		}
		want[chunkPrefix+oi.NUID] = uint64(oi.Chunks)
		if got, err := w.n.obs.GetBytes(ctx, name); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s reads back %d bytes, %v; want %d bytes", name, len(got), err, len(data))
		}
	}
	got := chunkSubjects(ctx, t, w.n)
	for _, o := range w.orphans {
		if _, ok := got[o]; ok != orphansKept {
			t.Errorf("orphan %s present = %v, want %v", o, ok, orphansKept)
		}
		delete(got, o)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("chunk subjects %v, want those of the live objects %v", got, want)
	}
}

func TestRemoveStaleChunks(t *testing.T) {
	t.Parallel()
	data := func(seed uint64) []byte { return randomBytes(300<<10+7, seed) } // 3 chunks
	cutoff := func() time.Time { return time.Now().Add(-StaleAfter) }        // what the store uses
	future := func() time.Time { return time.Now().Add(time.Hour) }          // every chunk is "old"
	cases := []struct {
		name        string
		setup       func(ctx context.Context, t *testing.T, w *staleWorld)
		before      func() time.Time
		wantRemoved int
		orphansKept bool
	}{{
		name: "an old orphan is purged",
		setup: func(ctx context.Context, t *testing.T, w *staleWorld) {
			w.put(ctx, t, nameA, data(1))
			w.abandon(ctx, t, "KILLEDPUT0000000000001", 3)
		},
		before:      future,
		wantRemoved: 1,
	}, {
		name: "several old orphans are purged",
		setup: func(ctx context.Context, t *testing.T, w *staleWorld) {
			w.abandon(ctx, t, "KILLEDPUT0000000000001", 1)
			w.put(ctx, t, nameA, data(1))
			w.abandon(ctx, t, "KILLEDPUT0000000000002", 5)
			w.put(ctx, t, nameB, data(2))
		},
		before:      future,
		wantRemoved: 2,
	}, {
		name: "a fresh orphan is kept (a Put may still be writing it)",
		setup: func(ctx context.Context, t *testing.T, w *staleWorld) {
			w.put(ctx, t, nameA, data(1))
			w.abandon(ctx, t, "KILLEDPUT0000000000001", 3)
		},
		before:      cutoff,
		orphansKept: true,
	}, {
		name: "chunks of live objects are never touched",
		setup: func(ctx context.Context, t *testing.T, w *staleWorld) {
			w.put(ctx, t, nameA, data(1))
			w.put(ctx, t, nameB, data(2))
			// SetMeta republishes the meta: it must keep naming the chunks.
			if err := w.n.SetMeta(ctx, nameB, Meta{JobID: jobB, Note: "verified"}); err != nil {
				t.Fatal(err)
			}
			// An object that is not an archive is still someone's object.
			d := data(3)
			if _, err := w.n.obs.PutBytes(ctx, "notes.txt", d); err != nil {
				t.Fatal(err)
			}
			w.raw["notes.txt"] = d
		},
		before: future,
	}, {
		name: "a replaced object leaves nothing behind",
		setup: func(ctx context.Context, t *testing.T, w *staleWorld) {
			for i := range 3 {
				d := data(uint64(10 + i))
				if _, err := w.n.obs.Put(ctx, jetstream.ObjectMeta{Name: nameA}, bytes.NewReader(d)); err != nil {
					t.Fatal(err)
				}
				w.data[nameA] = d
			}
		},
		before: future,
	}, {
		name: "a replace killed before purging the old chunks",
		setup: func(ctx context.Context, t *testing.T, w *staleWorld) {
			w.put(ctx, t, nameA, data(1))
			old := w.nuid(ctx, t, nameA)
			d := data(2)
			if _, err := w.n.obs.Put(ctx, jetstream.ObjectMeta{Name: nameA}, bytes.NewReader(d)); err != nil {
				t.Fatal(err)
			}
			w.data[nameA] = d
			w.abandon(ctx, t, old, 3) // as if the purge of the old chunks never ran
		},
		before:      future,
		wantRemoved: 1,
	}, {
		name: "a delete killed before purging the chunks",
		setup: func(ctx context.Context, t *testing.T, w *staleWorld) {
			w.put(ctx, t, nameA, data(1))
			w.put(ctx, t, nameB, data(2))
			old := w.nuid(ctx, t, nameB)
			if err := w.n.Delete(ctx, nameB); err != nil {
				t.Fatal(err)
			}
			delete(w.data, nameB)
			// The delete marker still names old: it must not keep it alive.
			if got := w.nuid(ctx, t, nameB); got != old {
				t.Fatalf("delete marker names %s, want %s", got, old)
			}
			w.abandon(ctx, t, old, 3)
		},
		before:      future,
		wantRemoved: 1,
	}, {
		name:   "an empty bucket",
		setup:  func(context.Context, *testing.T, *staleWorld) {},
		before: future,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			w := newStaleWorld(t)
			tc.setup(ctx, t, w)
			removed, err := w.n.removeStale(ctx, tc.before())
			if err != nil || removed != tc.wantRemoved {
				t.Fatalf("removeStale = %d, %v; want %d", removed, err, tc.wantRemoved)
			}
			w.check(ctx, t, tc.orphansKept)
			// A second pass finds nothing more to do.
			if removed, err := w.n.removeStale(ctx, tc.before()); err != nil || removed != 0 {
				t.Fatalf("second removeStale = %d, %v", removed, err)
			}
		})
	}
}

// A Put in progress has chunks and no meta yet: the cleanup (with the
// store's own cutoff) keeps them and the Put completes intact.
func TestRemoveStaleKeepsPutInProgress(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	w := newStaleWorld(t)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := w.n.Put(ctx, nameA, pr)
		done <- err
	}()
	data := randomBytes(3<<20, 21)
	if _, err := pw.Write(data[:2<<20]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(chunkSubjects(ctx, t, w.n)) == 0 { // the first chunks are stored
		if time.Now().After(deadline) {
			t.Fatal("no chunk of the Put in progress was stored")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if removed, err := w.n.RemoveStale(ctx); err != nil || removed != 0 {
		t.Fatalf("RemoveStale during a Put = %d, %v", removed, err)
	}
	pw.Write(data[2<<20:])
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.data[nameA] = data
	w.check(ctx, t, false)
}

// Put and Delete clean on their own, at most every cleanEvery, and the
// outcome is kept; opening and reading (what the API's user, which may not
// purge, does) never cleans.
func TestPutAndDeleteRemoveStale(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	w := newStaleWorld(t)
	w.abandon(ctx, t, "KILLEDPUT0000000000001", 2) // fresh: kept
	if _, err := w.n.List(ctx); err != nil {
		t.Fatal(err)
	}
	if c := w.n.LastCleanup(); !c.At.IsZero() {
		t.Fatalf("List cleaned: %+v", c)
	}
	start := time.Now()
	w.put(ctx, t, nameA, []byte("a"))
	first := w.n.LastCleanup()
	if first.At.Before(start) || first.Err != nil || first.Removed != 0 {
		t.Fatalf("cleanup of the first Put: %+v", first)
	}
	w.put(ctx, t, nameB, []byte("b"))
	if err := w.n.Delete(ctx, nameB); err != nil {
		t.Fatal(err)
	}
	delete(w.data, nameB)
	if c := w.n.LastCleanup(); !c.At.Equal(first.At) {
		t.Fatalf("cleaned again within %s: %+v", cleanEvery, c)
	}
	// Once cleanEvery has passed, the next Delete (or Put) cleans again.
	old := first
	old.At = time.Now().Add(-cleanEvery - time.Second)
	w.n.lastClean.Store(&old)
	if err := w.n.Delete(ctx, nameA); err != nil {
		t.Fatal(err)
	}
	delete(w.data, nameA)
	if c := w.n.LastCleanup(); !c.At.After(old.At) || c.Err != nil {
		t.Fatalf("cleanup by Delete after %s: %+v", cleanEvery, c)
	}
	w.check(ctx, t, true)
}

// A meta that cannot be decoded may refer to any chunks: nothing is purged.
func TestRemoveStaleStopsOnUnreadableMeta(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	w := newStaleWorld(t)
	if _, err := w.n.js.Publish(ctx, metaPrefix+"Z2FyYmFnZQ==", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	w.put(ctx, t, nameA, []byte("a")) // a readable meta after it
	w.abandon(ctx, t, "KILLEDPUT0000000000001", 2)
	removed, err := w.n.removeStale(ctx, time.Now().Add(time.Hour))
	if err == nil || removed != 0 || !strings.Contains(err.Error(), "readable metas") {
		t.Fatalf("removeStale = %d, %v; want an error and nothing removed", removed, err)
	}
	w.check(ctx, t, true)
}

// Many objects and orphans: every orphan is found and every live object
// kept.
func TestRemoveStaleManyObjects(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	w := newStaleWorld(t)
	const objects, orphans = 300, 60
	for i := range objects {
		name := backupfmt.ArchiveName(t0.Add(time.Duration(i)*time.Minute), jobA, backupfmt.Gzip)
		d := randomBytes(100+i, uint64(i))
		if _, err := w.n.obs.PutBytes(ctx, name, d); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			w.data[name] = d
		}
	}
	for i := range orphans {
		w.abandon(ctx, t, fmt.Sprintf("KILLEDPUT%013d", i), 1+i%3)
	}
	removed, err := w.n.removeStale(ctx, time.Now().Add(time.Hour))
	if err != nil || removed != orphans {
		t.Fatalf("removeStale = %d, %v; want %d", removed, err, orphans)
	}
	got := chunkSubjects(ctx, t, w.n)
	if len(got) != objects {
		t.Fatalf("%d chunk subjects left, want %d (one per object)", len(got), objects)
	}
	for _, o := range w.orphans {
		if _, ok := got[o]; ok {
			t.Fatalf("orphan %s kept", o)
		}
	}
	list, err := w.n.List(ctx)
	if err != nil || len(list) != objects {
		t.Fatalf("list: %d, %v", len(list), err)
	}
	names := slices.Collect(maps.Keys(w.data))
	slices.Sort(names)
	for _, name := range names[:5] {
		rc, _, err := w.n.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(b, w.data[name]) {
			t.Fatalf("%s reads back %d bytes, %v", name, len(b), err)
		}
	}
}

// Past 100,000 subjects the server answers the subjects of a stream info
// in pages (JSMaxSubjectDetails), which nats.go requests one after the
// other: an orphan sorted after the first page's 100,000 subjects is still
// found. The live objects are fakes (a meta and one chunk each, published
// directly) to keep this to seconds; it is skipped with -short.
func TestRemoveStaleFindsOrphansPastTheFirstPage(t *testing.T) {
	// Not parallel: it publishes 200,000 messages, which is heavy enough
	// beside the package's other tests on 2 cores.
	if testing.Short() {
		t.Skip("publishes 200,000 messages")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := newStaleWorld(t)
	const live = 100_000 // chunk subjects "…C.LIVE…", sorted before "…C.ZZZ…"
	// Published with acks, a window at a time: the server drops core
	// publishes its stream ingest cannot keep up with, which left the
	// stream short and this test waiting until its deadline.
	const window = 2000
	for i := range live {
		nuid := fmt.Sprintf("LIVE%018d", i)
		name := fmt.Sprintf("object-%06d", i)
		if _, err := w.n.js.PublishAsync(chunkPrefix+nuid, []byte("x")); err != nil {
			t.Fatal(err)
		}
		meta, err := json.Marshal(jetstream.ObjectInfo{ObjectMeta: jetstream.ObjectMeta{Name: name}, Bucket: bus.BucketBackups, NUID: nuid, Size: 1, Chunks: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.n.js.PublishAsync(metaPrefix+base64.URLEncoding.EncodeToString([]byte(name)), meta); err != nil {
			t.Fatal(err)
		}
		if i%(window/2) == window/2-1 || i == live-1 {
			select {
			case <-w.n.js.PublishAsyncComplete():
			case <-ctx.Done():
				t.Fatalf("publishing the live objects: %v", ctx.Err())
			}
		}
	}
	s, err := w.n.js.Stream(ctx, streamBackups)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for {
		si, err := s.Info(ctx)
		if err != nil {
			t.Fatalf("stream holds %d of %d messages: %v", last, 2*live, err)
		}
		last = si.State.Msgs
		if si.State.Msgs == 2*live {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.abandon(ctx, t, "ZZZKILLEDPUT0000000001", 2) // on the second page
	removed, err := w.n.removeStale(ctx, time.Now().Add(time.Hour))
	if err != nil || removed != 1 {
		t.Fatalf("removeStale = %d, %v; want the one orphan", removed, err)
	}
	got := chunkSubjects(ctx, t, w.n)
	if _, ok := got[w.orphans[0]]; ok || len(got) != live {
		t.Fatalf("%d chunk subjects left (orphan kept: %v), want the %d live ones", len(got), ok, live)
	}
}
