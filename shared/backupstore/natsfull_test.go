package backupstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/testkit"
)

// chunkSize is nats.go's default object chunk size, which Put uses.
const chunkSize = 128 << 10

// limitedServer starts an embedded JetStream server whose file storage is
// limited to maxStore bytes (0: no limit but the disk), stopped when the
// test ends.
func limitedServer(t *testing.T, maxStore int64) *server.Server {
	t.Helper()
	opts := &server.Options{
		ServerName: "full-" + testkit.RandomSuffix(),
		Host:       "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: t.TempDir(),
	}
	if maxStore > 0 {
		opts.JetStreamMaxStore = maxStore
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("embedded nats: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		t.Fatal("embedded nats: not ready within 10s")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// natsOn opens the store on ns (creating the bucket as the services do).
func natsOn(ctx context.Context, t *testing.T, ns *server.Server) (*NATS, jetstream.JetStream) {
	t.Helper()
	nc := testkit.Connect(t, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNATS(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	return n, js
}

// streamBytes is how many bytes the bucket's stream holds.
func streamBytes(ctx context.Context, t *testing.T, js jetstream.JetStream) int64 {
	t.Helper()
	s, err := js.Stream(ctx, streamBackups)
	if err != nil {
		t.Fatal(err)
	}
	si, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return int64(si.State.Bytes)
}

// setBucketMaxBytes limits the bucket to maxBytes, as an operator would.
func setBucketMaxBytes(ctx context.Context, t *testing.T, js jetstream.JetStream, maxBytes int64) {
	t.Helper()
	if _, err := js.UpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: bus.BucketBackups, Description: "insightops backup archives",
		Storage: jetstream.FileStorage, MaxBytes: maxBytes,
	}); err != nil {
		t.Fatalf("limit the bucket to %d bytes: %v", maxBytes, err)
	}
}

// assertOnly checks that the store lists exactly the archives of want,
// that they read back byte-identical, and that the bucket's stream holds
// their meta and chunk subjects and nothing else: no orphan chunks, no
// meta of a failed Put.
func assertOnly(ctx context.Context, t *testing.T, n *NATS, js jetstream.JetStream, want map[string][]byte) {
	t.Helper()
	list, err := n.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, in := range list {
		listed = append(listed, in.Name)
		if data, ok := want[in.Name]; ok && (in.Size != int64(len(data)) || in.SHA256 != sha(data)) {
			t.Errorf("%s listed with size %d sha256 %s, want %d %s", in.Name, in.Size, in.SHA256, len(data), sha(data))
		}
	}
	if names := slices.Sorted(maps.Keys(want)); !slices.Equal(slices.Sorted(slices.Values(listed)), names) {
		t.Fatalf("listed %v, want exactly %v", listed, names)
	}
	wantChunks, wantMetas := map[string]uint64{}, map[string]uint64{}
	for name, data := range want {
		rc, _, err := n.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s reads back %d bytes (%v), want its %d bytes unchanged", name, len(got), err, len(data))
		}
		oi, err := n.obs.GetInfo(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		wantChunks[chunkPrefix+oi.NUID] = uint64(oi.Chunks)
		wantMetas[metaPrefix+base64.URLEncoding.EncodeToString([]byte(name))] = 1
	}
	s, err := js.Stream(ctx, streamBackups)
	if err != nil {
		t.Fatal(err)
	}
	for filter, want := range map[string]map[string]uint64{chunkPrefix + ">": wantChunks, metaPrefix + ">": wantMetas} {
		si, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			t.Fatal(err)
		}
		got := si.State.Subjects
		if got == nil {
			got = map[string]uint64{}
		}
		if !maps.Equal(got, want) {
			t.Errorf("subjects %s: %v, want only the archives' %v", filter, got, want)
		}
	}
}

// TestNATSFullStore: a Put that JetStream cannot store because the
// bucket's MaxBytes, the server's JetStream storage or the account's
// limit is reached fails with ErrNoSpace (beside the server's API error),
// leaves nothing listed and no chunk or meta behind, the earlier archives
// read back unchanged, and the space is given back.
func TestNATSFullStore(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// maxStore is the server's JetStream file storage, account the
		// account's; 0: unlimited.
		maxStore, account int64
		// bucketMax, when set, is the bucket's MaxBytes once the earlier
		// archives are in, from the bytes they take.
		bucketMax func(used int64) int64
		size      int                 // of the archive that does not fit
		code      jetstream.ErrorCode // the server's answer
	}{
		{
			name:      "bucket MaxBytes, the archive far too big",
			bucketMax: func(used int64) int64 { return used + 512<<10 },
			size:      2 << 20, code: jsErrStreamStoreFailed,
		},
		{
			// Every chunk but the last fits, and so does the meta published
			// right after it: nats.go's Put leaves that meta listed.
			name:      "bucket MaxBytes, only the last chunk does not fit",
			bucketMax: func(used int64) int64 { return used + 2*chunkSize + 20_000 },
			size:      2*chunkSize + 60_000, code: jsErrStreamStoreFailed,
		},
		{
			name:     "server JetStream storage (max_file_store)",
			maxStore: 1 << 20,
			size:     2 << 20, code: jsErrInsufficientResources,
		},
		{
			name:    "account JetStream storage limit",
			account: 1 << 20,
			size:    2 << 20, code: jsErrAccountResourcesExceeded,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			ns := limitedServer(t, tc.maxStore)
			if tc.account > 0 {
				if err := ns.GlobalAccount().UpdateJetStreamLimits(map[string]server.JetStreamAccountLimits{
					"": {MaxMemory: -1, MaxStore: tc.account, MaxStreams: -1, MaxConsumers: -1},
				}); err != nil {
					t.Fatal(err)
				}
			}
			n, js := natsOn(ctx, t, ns)
			keep := map[string][]byte{}
			for i := range 2 {
				name := backupfmt.ArchiveName(t0.Add(time.Duration(i)*time.Minute), jobB, backupfmt.Gzip)
				keep[name] = randomBytes(200_000+i, uint64(20+i))
				if _, err := n.Put(ctx, name, bytes.NewReader(keep[name])); err != nil {
					t.Fatal(err)
				}
				if err := n.SetMeta(ctx, name, Meta{Note: fmt.Sprint("keep ", i)}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.bucketMax != nil {
				setBucketMaxBytes(ctx, t, js, tc.bucketMax(streamBytes(ctx, t, js)))
			}

			_, err := n.Put(ctx, nameA, bytes.NewReader(randomBytes(tc.size, 30)))
			var ae *jetstream.APIError
			if !errors.Is(err, ErrNoSpace) || !errors.As(err, &ae) || ae.ErrorCode != tc.code {
				t.Fatalf("put into a full store = %v, want ErrNoSpace beside API error %d", err, tc.code)
			}
			t.Logf("put into a full store: %v", err)
			assertOnly(ctx, t, n, js, keep)
			for name := range keep {
				if m, err := n.Meta(ctx, name); err != nil || m.Note == "" {
					t.Errorf("meta of %s after the failed put: %+v, %v", name, m, err)
				}
			}

			// The space the failed Put took is back: an archive that fits
			// goes in.
			small := randomBytes(10_000, 31)
			if _, err := n.Put(ctx, nameA, bytes.NewReader(small)); err != nil {
				t.Fatalf("put of an archive that fits after the failure: %v", err)
			}
			keep[nameA] = small
			assertOnly(ctx, t, n, js, keep)
		})
	}
}

// TestNATSFullStoreSetMetaAndDelete: on a bucket so full that no message
// fits, SetMeta fails with ErrNoSpace and keeps the old Meta, and Delete
// (pruning, the way out) still removes an archive, meta and chunks,
// although its delete marker is refused.
func TestNATSFullStoreSetMetaAndDelete(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	n, js := natsOn(ctx, t, limitedServer(t, 0))
	keep := map[string][]byte{nameA: randomBytes(300_000, 40), nameB: randomBytes(150_000, 41)}
	for name, data := range keep {
		if _, err := n.Put(ctx, name, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := n.SetMeta(ctx, name, Meta{Note: "old " + name}); err != nil {
			t.Fatal(err)
		}
	}
	setBucketMaxBytes(ctx, t, js, streamBytes(ctx, t, js)+10)

	err := n.SetMeta(ctx, nameA, Meta{Note: "new"})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("set meta on a full store = %v, want ErrNoSpace", err)
	}
	if m, err := n.Meta(ctx, nameA); err != nil || m.Note != "old "+nameA {
		t.Fatalf("meta after a refused update: %+v, %v", m, err)
	}
	// The delete marker alone does not fit either.
	if err := n.obs.Delete(ctx, nameA); !isNoSpace(err) {
		t.Fatalf("nats.go delete on a full store = %v, want it refused for space", err)
	}
	if err := n.Delete(ctx, nameA); err != nil {
		t.Fatalf("delete on a full store: %v", err)
	}
	delete(keep, nameA)
	assertOnly(ctx, t, n, js, keep)
	if _, _, err := n.Open(ctx, nameA); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open of the deleted archive: %v", err)
	}
	// Room again: the Meta update goes through.
	if err := n.SetMeta(ctx, nameB, Meta{Note: "new"}); err != nil {
		t.Fatalf("set meta after pruning: %v", err)
	}
}

// TestIsNoSpace pins the API errors taken for a full store, and that the
// codes and texts matched are nats-server's.
func TestIsNoSpace(t *testing.T) {
	t.Parallel()
	api := func(code jetstream.ErrorCode, desc string) error {
		return &jetstream.APIError{Code: 503, ErrorCode: code, Description: desc}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{api(jsErrStreamStoreFailed, storeMaxBytes), true},
		{api(jsErrStreamStoreFailed, storeMaxMsgs), true},
		{fmt.Errorf("nats: %w", api(jsErrStreamStoreFailed, storeMaxBytes)), true}, // PublishMsg's wrapping
		{api(jsErrInsufficientResources, "insufficient resources"), true},
		{api(jsErrAccountResourcesExceeded, "resource limits exceeded for account"), true},
		{api(jsErrStreamStoreFailed, server.ErrMaxMsgsPerSubject.Error()), false},
		{api(jsErrStreamStoreFailed, server.ErrMsgTooLarge.Error()), false},
		{jetstream.ErrStreamMessageExceedsMaximum, false},
		{jetstream.ErrStreamNotFound, false},
		{nats.ErrTimeout, false},
		{errors.New(storeMaxBytes), false}, // text alone, no API error
		{nil, false},
	} {
		if got := isNoSpace(tc.err); got != tc.want {
			t.Errorf("isNoSpace(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}

	if server.ErrMaxBytes.Error() != storeMaxBytes || server.ErrMaxMsgs.Error() != storeMaxMsgs {
		t.Errorf("nats-server's store errors are %q and %q, matched %q and %q", server.ErrMaxBytes, server.ErrMaxMsgs, storeMaxBytes, storeMaxMsgs)
	}
	for code, e := range map[jetstream.ErrorCode]*server.ApiError{
		jsErrStreamStoreFailed:        server.NewJSStreamStoreFailedError(server.ErrMaxBytes),
		jsErrInsufficientResources:    server.NewJSInsufficientResourcesError(),
		jsErrAccountResourcesExceeded: server.NewJSAccountResourcesExceededError(),
	} {
		if jetstream.ErrorCode(e.ErrCode) != code {
			t.Errorf("nats-server's %q has err_code %d, matched %d", e.Description, e.ErrCode, code)
		}
	}
}
