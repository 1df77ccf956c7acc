package backupstore

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// TestSealedPut: the seal sees the SHA-256 of every byte, its signature is
// committed with the archive (listed, opened, kept by SetMeta, removed by
// Delete), a seal that fails leaves nothing listed, and an unsealed Put
// of a name whose old signature is still around is unsigned.
func TestSealedPut(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, fx fixture) {
		s := fx.store
		ctx := ctxT(t)
		data := randomBytes(300_000, 21)
		var seen string
		info, err := s.Put(ctx, nameA, bytes.NewReader(data), WithSeal(func(sum string) (string, error) {
			seen = sum
			return "v1.sig-of-" + sum[:8], nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		want := "v1.sig-of-" + sha(data)[:8]
		if seen != sha(data) || info.Signature != want {
			t.Fatalf("seal saw %s (want %s), put returned signature %q", seen, sha(data), info.Signature)
		}
		list, err := s.List(ctx)
		if err != nil || len(list) != 1 || list[0].Signature != want {
			t.Fatalf("list = %+v, %v; want the signature %s", list, err, want)
		}
		rc, oinfo, err := s.Open(ctx, nameA)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if oinfo.Signature != want {
			t.Errorf("open: signature %q", oinfo.Signature)
		}
		if err := s.SetMeta(ctx, nameA, Meta{Note: "n"}); err != nil {
			t.Fatal(err)
		}
		if list, _ := s.List(ctx); len(list) != 1 || list[0].Signature != want {
			t.Errorf("after SetMeta: %+v", list)
		}

		boom := errors.New("no key")
		if _, err := s.Put(ctx, nameB, bytes.NewReader(data), WithSeal(func(string) (string, error) { return "", boom })); !errors.Is(err, boom) {
			t.Fatalf("put with a failing seal = %v, want %v", err, boom)
		}
		if _, err := s.Put(ctx, nameB, bytes.NewReader(data), WithSeal(func(string) (string, error) { return "two\nlines", nil })); err == nil {
			t.Fatal("put with a multi-line signature succeeded")
		}
		if list, _ := s.List(ctx); len(list) != 1 || list[0].Name != nameA {
			t.Fatalf("failed seals left %+v listed", list)
		}
		if fx.local != nil {
			assertDir(t, fx.local.Dir(), nameA, nameA+shaSuffix, nameA+sigSuffix, nameA+metaSuffix)
		}
		if n, ok := s.(*NATS); ok {
			assertNoOrphanChunks(t, n, []string{nameA})
		}

		if err := s.Delete(ctx, nameA); err != nil {
			t.Fatal(err)
		}
		if fx.local != nil {
			assertDir(t, fx.local.Dir())
			// A signature left beside a name (a crash, a hand copy) does
			// not sign an unsealed Put of that name.
			if err := os.WriteFile(fx.local.path(nameA+sigSuffix), []byte(want+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		info, err = s.Put(ctx, nameA, bytes.NewReader(data))
		if err != nil || info.Signature != "" {
			t.Fatalf("unsealed put: %+v, %v", info, err)
		}
		if list, _ := s.List(ctx); len(list) != 1 || list[0].Signature != "" {
			t.Errorf("unsealed archive listed with a signature: %+v", list)
		}
	})
}
