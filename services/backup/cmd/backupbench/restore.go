package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/snapshot"
	"github.com/insightops/insightops/shared/store"
)

// restore runs one restore of component (system|target) from arc in a
// child process and returns its time and peak RSS. runtimePath is the
// Target DB runtime copy to replace, dbURL the System DB to restore into.
func (b *bench) restore(component string, arc archived, runtimePath, dbURL string) (measured, error) {
	cdir, err := os.MkdirTemp(b.dir, "restore-*")
	if err != nil {
		return measured{}, err
	}
	defer os.RemoveAll(cdir)
	var res childResult
	m, err := runSelf(&res, b.env(false), "-child", "restore-"+component, "-dir", cdir, "-archive", arc.name, "-manifest", arc.manifest,
		"-target", runtimePath, "-database-url", dbURL)
	if err != nil {
		return measured{}, fmt.Errorf("restore of %s: %w", component, err)
	}
	if runtimePath != "" {
		_ = os.RemoveAll(filepath.Dir(runtimePath))
	}
	return m, nil
}

// runRestoreChild restores component from the archive name of the store
// the environment names (passed). It opens it as the restore worker
// does, timed apart (archiver.OpenAuthentic: read from the store into a
// private copy under dir, signature checked, decrypted with
// BACKUP_AGE_IDENTITY_FILE when it is encrypted), then runs the restore
// worker's apply step on that copy: the archive streamed by backupfmt.Walk
// with the verified manifest as Expect, the component's file handed to
// snapshot.RestoreTarget (fsync, rename into place; WithCheckedInput, as
// the worker: the verification ran integrity_check on these bytes) or
// snapshot.RestoreSystem (pg_restore --single-transaction, audit rows
// kept) followed by the schema migration, as restoreworker does. The
// restore worker verifies the archive first (timed apart by the parent,
// not here). It prints the apply step's time and the opening's.
func runRestoreChild(component, dir, name, manifestPath, runtimePath, dbURL string) error {
	ctx := context.Background()
	cfg, err := loadChildConfig(dir, nil)
	if err != nil {
		return err
	}
	op, err := newOpener(ctx, cfg)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(manifestPath)
	if err != nil {
		return err
	}
	var m backupfmt.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", manifestPath, err)
	}
	var apply func(ctx context.Context, f backupfmt.File, r io.Reader) error
	switch component {
	case backupfmt.ComponentTarget:
		golden := filepath.Join(dir, "golden-source.db") // never written, as in production
		apply = func(ctx context.Context, f backupfmt.File, r io.Reader) error {
			_, err := snapshot.RestoreTarget(ctx, r, runtimePath, golden, snapshot.WithScratchDir(dir), snapshot.WithCheckedInput(f.SHA256))
			return err
		}
	case backupfmt.ComponentSystem:
		db, err := store.Open(ctx, dbURL, "")
		if err != nil {
			return err
		}
		defer db.Close()
		apply = func(ctx context.Context, _ backupfmt.File, r io.Reader) error {
			if _, err := snapshot.RestoreSystem(ctx, db, r, snapshot.WithScratchDir(dir)); err != nil {
				return err
			}
			if _, err := db.Migrate(ctx); err != nil {
				return fmt.Errorf("migrate the restored System DB: %w", err)
			}
			return nil
		}
	default:
		return fmt.Errorf("restore of %q: accepted components: system, target", component)
	}
	start := time.Now()
	arc, err := op.open(ctx, name, dir)
	if err != nil {
		return err
	}
	defer arc.Close()
	opened := time.Since(start).Seconds()
	start = time.Now()
	restored := false
	_, err = backupfmt.Walk(ctx, arc.Reader(), backupfmt.ReadOptions{Name: name, Expect: &m, SameCopy: arc.Unshared()}, func(ctx context.Context, file backupfmt.File, content io.Reader) error {
		if file.Component() != component {
			return nil
		}
		restored = true
		return apply(ctx, file, content)
	})
	if err != nil {
		return fmt.Errorf("restore %s from %s: %w", component, name, err)
	}
	if !restored {
		return errors.New("the archive holds no " + component + " file")
	}
	return json.NewEncoder(os.Stdout).Encode(childResult{Seconds: time.Since(start).Seconds(), OpenSeconds: opened})
}
