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
func restore(dir, component string, arc archived, runtimePath, dbURL string) (measured, error) {
	cdir, err := os.MkdirTemp(dir, "restore-*")
	if err != nil {
		return measured{}, err
	}
	defer os.RemoveAll(cdir)
	var res childResult
	m, err := runSelf(&res, "-child", "restore-"+component, "-dir", cdir, "-archive", arc.path, "-manifest", arc.manifest,
		"-target", runtimePath, "-database-url", dbURL)
	if err != nil {
		return measured{}, fmt.Errorf("restore of %s: %w", component, err)
	}
	if runtimePath != "" {
		_ = os.RemoveAll(filepath.Dir(runtimePath))
	}
	return m, nil
}

// runRestoreChild restores component from the archive file with the
// restore worker's apply step: the archive streamed by backupfmt.Walk
// with the verified manifest as Expect, the component's file handed to
// snapshot.RestoreTarget (fsync, rename into place; WithCheckedInput, as
// the worker: the verification ran integrity_check on these bytes) or
// snapshot.RestoreSystem (pg_restore --single-transaction, audit rows
// kept) followed by the schema migration, as restoreworker does. The
// restore worker verifies the archive first (timed apart by the parent,
// not here). It prints the time taken.
func runRestoreChild(component, dir, archive, manifestPath, runtimePath, dbURL string) error {
	ctx := context.Background()
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
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	start := time.Now()
	restored := false
	_, err = backupfmt.Walk(ctx, f, backupfmt.ReadOptions{Name: filepath.Base(archive), Expect: &m}, func(ctx context.Context, file backupfmt.File, content io.Reader) error {
		if file.Component() != component {
			return nil
		}
		restored = true
		return apply(ctx, file, content)
	})
	if err != nil {
		return fmt.Errorf("restore %s from %s: %w", component, archive, err)
	}
	if !restored {
		return errors.New("the archive holds no " + component + " file")
	}
	return json.NewEncoder(os.Stdout).Encode(childResult{Seconds: time.Since(start).Seconds()})
}
