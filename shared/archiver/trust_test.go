package archiver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/archiver/archivertest"
	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
)

// TestVerifyRefusesPlantedArchivesInNATS: in the NATS object store
// (embedded JetStream), archives written by someone holding the bucket's
// write rights but not the signing key (one unsigned, one signed with
// another key, and this deployment's signed archive replaced by other
// bytes carrying its old signature in the object's metadata) are refused
// by verify with their code, no checker run and no verification recorded;
// the genuine archive verifies.
func TestVerifyRefusesPlantedArchivesInNATS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := backupstore.NewNATS(ctx, e.bus.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	a := New(e.deps, Options{Store: st, ChunkSize: 64 << 10, LockWait: -1})
	res, err := a.Create(ctx, jobspec.BackupCreateArgs{}, Run{JobID: jobs.NewID(), Log: e.deps.Log})
	if err != nil {
		t.Fatal(err)
	}
	raw := readAll(t, st, res.Archive)
	info := infoOf(t, st, res.Archive)
	if info.Signature == "" {
		t.Fatal("the archive Create stored is not signed")
	}

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	k, err := archivesig.ParseKey(hex.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	other := archivesig.NewKeyring(&k)
	sysPath := "system/system.db"
	plant := func(sign *archivesig.Keyring) string {
		id := jobs.NewID()
		created := time.Now().UTC().Truncate(time.Second)
		b := archivertest.Rebuild(t, raw, id, created, map[string][]byte{sysPath: []byte("not the System DB")})
		name := backupfmt.ArchiveName(created, id, backupfmt.Gzip)
		var opts []backupstore.PutOption
		if sign != nil {
			rep, err := backupfmt.Verify(ctx, bytes.NewReader(b), backupfmt.VerifyOptions{ReadOptions: backupfmt.ReadOptions{Name: name}})
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, backupstore.WithSeal(Seal(sign, name, rep.ArchiveSHA256, rep.ManifestSHA256)))
		}
		if _, err := st.Put(ctx, name, bytes.NewReader(b), opts...); err != nil {
			t.Fatal(err)
		}
		return name
	}
	unsigned, wrongKey := plant(nil), plant(other)

	// The genuine archive replaced in the bucket: new bytes under its name,
	// its old metadata (signature included) put back on the new object.
	obs, err := e.bus.JS.ObjectStore(ctx, bus.BucketBackups)
	if err != nil {
		t.Fatal(err)
	}
	oi, err := obs.GetInfo(ctx, res.Archive)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := backupfmt.ParseArchiveName(res.Archive)
	swapped := archivertest.Rebuild(t, raw, n.JobID, n.Created, map[string][]byte{sysPath: []byte("not the System DB")})
	if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: res.Archive, Metadata: oi.Metadata}, bytes.NewReader(swapped)); err != nil {
		t.Fatal(err)
	}
	if got := infoOf(t, st, res.Archive); got.Signature != info.Signature || got.SHA256 == info.SHA256 {
		t.Fatalf("swap did not keep the signature with new bytes: %+v", got)
	}

	for name, want := range map[string]jobs.Code{
		unsigned:    jobs.CodeArchiveUnsigned,
		wrongKey:    jobs.CodeArchiveSignatureInvalid,
		res.Archive: jobs.CodeArchiveSignatureInvalid,
	} {
		before := infoOf(t, st, name)
		vr, err := a.Verify(ctx, name, Run{JobID: jobs.NewID(), Log: e.deps.Log})
		if got := jobs.ErrorOf(err); err == nil || got.Code != want || len(vr.Files) != 0 {
			t.Errorf("verify %s: %v (code %s, %d files checked), want %s", name, err, got.Code, len(vr.Files), want)
		}
		if after := infoOf(t, st, name); after.Meta.Verification != nil || after.SHA256 != before.SHA256 {
			t.Errorf("verify of %s changed the store: %+v", name, after)
		}
	}

	// Put back, the genuine bytes verify again.
	if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: res.Archive, Metadata: oi.Metadata}, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, res.Archive, Run{JobID: jobs.NewID(), Log: e.deps.Log}); err != nil {
		t.Fatalf("verify of the genuine archive: %v", err)
	}
}

func readAll(t *testing.T, st backupstore.Store, name string) []byte {
	t.Helper()
	rc, _, err := st.Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func infoOf(t *testing.T, st backupstore.Store, name string) backupstore.Info {
	t.Helper()
	infos, err := st.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.Name == name {
			return i
		}
	}
	t.Fatalf("%s is not listed", name)
	return backupstore.Info{}
}
