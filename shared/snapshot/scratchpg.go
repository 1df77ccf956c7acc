package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/insightops/insightops/shared/store"
)

// ErrScratchUnavailable is returned (wrapped) by [TestRestorePostgres] when
// it cannot create its scratch database (no CREATEDB privilege, for
// example). It is returned before anything is read from the input, so the
// caller can fall back to [CheckSystem] (pg_restore --list) on the same
// reader.
var ErrScratchUnavailable = errors.New("cannot create a scratch database")

// TestRestorePostgres restores the pg_dump archive read from r into a new
// scratch database (insightops_scratch_<random>) on the server behind
// adminURL, which needs the CREATEDB privilege, and returns the row count of
// every System DB table found there. The scratch database is dropped before
// returning, whatever happens (with a fresh context if ctx is done). Errors
// never contain the URL's password.
func TestRestorePostgres(ctx context.Context, adminURL string, r io.Reader, opts ...Option) (Counts, error) {
	o := buildOptions(opts)
	rows, err := testRestorePostgres(ctx, adminURL, r, o)
	if err != nil {
		return nil, fmt.Errorf("snapshot: test restore: %w", err)
	}
	return rows, nil
}

func testRestorePostgres(ctx context.Context, adminURL string, r io.Reader, o options) (Counts, error) {
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		// pgx's message may quote the URL; never wrap the raw error.
		return nil, fmt.Errorf("parse admin URL: %s", redactURL(err.Error(), adminURL))
	}
	tool, err := findTool(ctx, "pg_restore", o.pgRestore)
	if err != nil {
		return nil, err
	}
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: connect to %s:%d/%s: %s", ErrScratchUnavailable, cfg.Host, cfg.Port, cfg.Database,
			redactSecret(err.Error(), cfg.Password))
	}
	defer admin.Close(context.WithoutCancel(ctx))
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "insightops_scratch_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("%w: create database %s: %s", ErrScratchUnavailable, name, redactSecret(err.Error(), cfg.Password))
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_, _ = admin.Exec(dctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}()

	scfg := cfg.Copy()
	scfg.Database = name
	pc := pgConnFromConfig(scfg)
	cr := newCountingReader(ctx, r, o.progress)
	err = proc{
		tool: tool,
		args: []string{"--single-transaction", "--no-owner", "--no-privileges", "--exit-on-error", "--dbname=" + pc.url},
		env:  pc.env(), stdin: cr, redact: pc.redact,
	}.run(ctx)
	cr.finish()
	if err != nil {
		return nil, fmt.Errorf("restore into scratch database %s: %w", name, err)
	}
	sc, err := pgx.ConnectConfig(ctx, scfg)
	if err != nil {
		return nil, fmt.Errorf("connect to scratch database %s: %s", name, redactSecret(err.Error(), cfg.Password))
	}
	defer sc.Close(context.WithoutCancel(ctx))
	rows := make(Counts)
	for _, t := range store.TableNames() {
		var n int64
		if err := sc.QueryRow(ctx, "SELECT count(*) FROM "+quoteIdent(t)).Scan(&n); err != nil {
			return nil, fmt.Errorf("count rows of %s in scratch database: %w", t, err)
		}
		rows[t] = n
	}
	return rows, nil
}

// redactURL removes the password of rawURL from msg, best effort, in the
// URL and keyword/value forms.
func redactURL(msg, rawURL string) string {
	if pw := connStringPassword(rawURL); pw != "" {
		msg = redactSecret(msg, pw)
	}
	return msg
}

func connStringPassword(raw string) string {
	if pw := connStringSettings(raw)["password"]; pw != "" {
		return pw
	}
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			return pw
		}
	}
	return ""
}
