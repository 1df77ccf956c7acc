package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/backupcrypt"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/memlimit"
	"github.com/insightops/insightops/shared/testkit"
)

// passed are the settings the parent gives every child in its
// environment: all of them, empty when unused, so that none is inherited
// from the shell that runs the bench.
var passed = []string{
	"BACKUP_COMPRESSION_LEVEL", "BACKUP_STORE", "BACKUP_DIR", "BACKUP_S3_ENDPOINT", "BACKUP_S3_BUCKET", "BACKUP_S3_REGION", "BACKUP_S3_PATH_STYLE",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "BACKUP_SIGNING_KEY", "BACKUP_AGE_RECIPIENTS", "BACKUP_AGE_IDENTITY_FILE",
}

// bench is what the backups, verifications and restores of a run share:
// the work directory, the compression, the backup store and the keys.
type bench struct {
	dir, comp string
	// vars are the store's settings (BACKUP_STORE, then BACKUP_DIR or
	// BACKUP_S3_* and AWS_*) and the signing key (BACKUP_SIGNING_KEY).
	vars map[string]string
	// recipient is the age public key of -age (BACKUP_AGE_RECIPIENTS of
	// the backups), identityFile its identity file (mode 0600) the
	// verification and the restores decrypt with; both empty without -age.
	recipient, identityFile string
	// opener is the parent's, to verify archives; its store also deletes
	// each archive once restored.
	opener
	scratch string
	desc    string // the store and the encryption, for the report
}

// opener opens archives as the verify and restore workers do.
type opener struct {
	store backupstore.Store
	keys  *archivesig.Keyring
	ids   *backupcrypt.Identities
}

// newOpener returns the opener of cfg: the store BACKUP_STORE names, the
// signing keys, the age identities of BACKUP_AGE_IDENTITY_FILE.
func newOpener(ctx context.Context, cfg config.Config) (opener, error) {
	st, err := backupstore.FromConfig(ctx, cfg, nil)
	if err != nil {
		return opener{}, err
	}
	keys, _, err := archivesig.Load(cfg.Signing())
	if err != nil {
		return opener{}, err
	}
	ids, err := archiver.Identities(cfg)
	if err != nil {
		return opener{}, err
	}
	return opener{store: st, keys: keys, ids: ids}, nil
}

// open reads the archive name from the store into a private copy under
// dir, checks its signature and decrypts it when it is encrypted
// (archiver.OpenAuthentic). Close the archive when done.
func (o opener) open(ctx context.Context, name, dir string) (*archiver.Authentic, error) {
	arc, err := archiver.OpenAuthentic(ctx, o.store, o.keys, o.ids, name, dir)
	if err != nil {
		return nil, fmt.Errorf("open archive %s: %w", name, err)
	}
	return arc, nil
}

// newBench prepares the run in dir: a signing key, with encrypt an age
// key, and the store, "local" (dir/backups) or "s3" (versitygw started
// by testkit.StartS3 with its buckets in dir/s3, and a new bucket). stop
// ends the S3 server and removes the identity file.
func newBench(ctx context.Context, dir, comp, kind string, encrypt bool) (b *bench, stop func(), err error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, nil, err
	}
	b = &bench{dir: dir, comp: comp, vars: map[string]string{"BACKUP_SIGNING_KEY": base64.StdEncoding.EncodeToString(key)}}
	var stops []func()
	stop = func() {
		for _, f := range stops {
			f()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	switch kind {
	case "local":
		b.vars["BACKUP_STORE"], b.vars["BACKUP_DIR"] = "local", filepath.Join(dir, "backups")
		b.desc = "local store " + b.vars["BACKUP_DIR"]
	case "s3":
		root := filepath.Join(dir, "s3")
		if err := os.MkdirAll(root, 0o750); err != nil {
			return nil, nil, err
		}
		srv, err := testkit.StartS3(ctx, root, dir)
		if err != nil {
			return nil, nil, fmt.Errorf("-store s3: %w", err)
		}
		stops = append(stops, srv.Stop)
		bucket, err := srv.MakeBucket(ctx, false)
		if err != nil {
			return nil, nil, fmt.Errorf("-store s3: %w", err)
		}
		maps.Copy(b.vars, map[string]string{
			"BACKUP_STORE": "s3", "BACKUP_S3_ENDPOINT": srv.Endpoint, "BACKUP_S3_BUCKET": bucket, "BACKUP_S3_REGION": srv.Region,
			"BACKUP_S3_PATH_STYLE": "true", "AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey,
		})
		b.desc = "S3 store (versitygw " + srv.Endpoint + ", bucket " + bucket + ")"
	default:
		return nil, nil, fmt.Errorf("-store %q: accepted: local, s3", kind)
	}
	if !encrypt {
		b.desc += ", no encryption"
	} else {
		b.desc += ", age-encrypted to a fresh X25519 key"
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return nil, nil, err
		}
		b.recipient, b.identityFile = id.Recipient().String(), filepath.Join(dir, "age-identity.txt")
		stops = append(stops, func() { _ = os.Remove(b.identityFile) })
		if err := os.WriteFile(b.identityFile, []byte("# public key: "+b.recipient+"\n"+id.String()+"\n"), 0o600); err != nil {
			return nil, nil, err
		}
	}
	vars := b.env(false)
	vars["DATA_DIR"] = dir
	cfg, err := loadConfig(vars)
	if err != nil {
		return nil, nil, err
	}
	if b.opener, err = newOpener(ctx, cfg); err != nil {
		return nil, nil, err
	}
	if b.scratch, err = archiver.ScratchDir(cfg); err != nil {
		return nil, nil, err
	}
	return b, stop, nil
}

// env returns the settings of a process of the run: vars, and the age
// recipient for one that writes archives (the backup) or the identity
// file for one that reads them (the verification, the restore).
func (b *bench) env(writes bool) map[string]string {
	e := maps.Clone(b.vars)
	if writes {
		e["BACKUP_AGE_RECIPIENTS"] = b.recipient
	} else {
		e["BACKUP_AGE_IDENTITY_FILE"] = b.identityFile
	}
	return e
}

// childEnv returns the passed settings of this child's environment with
// DATA_DIR dir and extra. A child runs one job, as a worker with
// WORKER_CONCURRENCY=1 does: it sets that worker's soft memory limit
// (memlimit.Apply, as app.Main does for the backup and restore workers).
func childEnv(dir string, extra map[string]string) map[string]string {
	vars := map[string]string{"DATA_DIR": dir, "WORKER_CONCURRENCY": "1"}
	for _, k := range passed {
		vars[k] = os.Getenv(k)
	}
	maps.Copy(vars, extra)
	return vars
}

// loadConfig loads the configuration of vars alone.
func loadConfig(vars map[string]string) (config.Config, error) {
	return config.Load(func(k string) string { return vars[k] })
}

// loadChildConfig loads a child's configuration (childEnv) and sets the
// soft memory limit the backup and restore workers set for it, unless
// GOMEMLIMIT is set in the environment.
func loadChildConfig(dir string, extra map[string]string) (config.Config, error) {
	cfg, err := loadConfig(childEnv(dir, extra))
	if err != nil {
		return config.Config{}, err
	}
	memlimit.Apply(cfg, os.Getenv)
	return cfg, nil
}

// verify reads the archive name back from the store and checks it as
// the verify worker does (archiver.Archiver.Verify), with
// backupfmt.Verify's default checkers: opened with
// archiver.OpenAuthentic (a private copy of the signed bytes, decrypted
// with the identity file under -age), no problem found, the SHA-256 read
// the opened copy's, the manifest the signed one; and it must hold a
// non-empty file of component. The worker's own pg_dump checker is not
// used: it refuses the generated bench_ledger table, which the System DB
// schema does not have (archive_unsafe). It returns the verified
// manifest.
func (b *bench) verify(ctx context.Context, name, component string) (backupfmt.Manifest, error) {
	arc, err := b.open(ctx, name, b.scratch)
	if err != nil {
		return backupfmt.Manifest{}, err
	}
	defer arc.Close()
	rep, err := backupfmt.Verify(ctx, arc.Reader(), backupfmt.VerifyOptions{ReadOptions: backupfmt.ReadOptions{Name: name}})
	switch {
	case err != nil:
		return backupfmt.Manifest{}, fmt.Errorf("archive %s does not verify: %w", name, err)
	case !rep.OK():
		return backupfmt.Manifest{}, fmt.Errorf("archive %s: problems %v", name, rep.Problems)
	case rep.ArchiveSHA256 != arc.SHA256():
		return backupfmt.Manifest{}, fmt.Errorf("archive %s: content SHA-256 %s, opened %s", name, rep.ArchiveSHA256, arc.SHA256())
	}
	if err := arc.CheckManifest(rep.ManifestSHA256); err != nil {
		return backupfmt.Manifest{}, err
	}
	for _, f := range rep.Files {
		if strings.HasPrefix(f.Path, component+"/") && f.Size > 0 {
			return rep.Manifest, nil
		}
	}
	return backupfmt.Manifest{}, fmt.Errorf("archive %s holds no %s file: %+v", name, component, rep.Files)
}

// childArgs are the environment variables of a child with env: the
// parent's environment, then every passed setting (empty when env has
// none).
func childArgs(env map[string]string) []string {
	out := os.Environ()
	for _, k := range passed {
		out = append(out, k+"="+env[k])
	}
	return out
}
