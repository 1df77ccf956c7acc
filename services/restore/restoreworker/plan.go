package restoreworker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/snapshot"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/vectors"
)

// restorePlan is what will be restored, decided and checked before
// anything is changed.
type restorePlan struct {
	components []string
	skipped    map[string]string
	system     *backupfmt.File
	target     *backupfmt.File
	chroma     map[string]backupfmt.File // by collection
	vectors    *vectors.Client
	ownVectors bool // vectors was made here and is closed by close
}

func (p *restorePlan) has(component string) bool { return slices.Contains(p.components, component) }

func (p *restorePlan) close() {
	if p != nil && p.ownVectors && p.vectors != nil {
		_ = p.vectors.Close()
	}
}

// plan decides which components to restore from the verified manifest m
// and checks every precondition, so that a restore that cannot work fails
// before the safety backup and before any store is touched: the
// components asked for are included in the archive and locked, the System
// DB dump is of the running System DB's dialect, the Target DB's runtime
// path is not its golden source, the Chroma files name known collections
// and Chroma is configured and answering.
func (w *Worker) plan(ctx context.Context, p jobspec.RestoreArgs, m backupfmt.Manifest, locked []string) (*restorePlan, error) {
	pl := &restorePlan{skipped: map[string]string{}, chroma: map[string]backupfmt.File{}}
	included := m.Included()
	explicit := len(p.Components) > 0
	want := p.Components
	if !explicit {
		want = included
	}
	for _, c := range backupfmt.Components {
		comp := m.Components[c]
		switch {
		case slices.Contains(want, c) && comp.Status != backupfmt.StatusIncluded:
			return nil, precondition("component %s was asked for, but the archive skipped it: %s", c, comp.Reason)
		case !slices.Contains(want, c) && comp.Status == backupfmt.StatusSkipped:
			pl.skipped[c] = "not in the archive: " + comp.Reason
		case !slices.Contains(want, c):
			pl.skipped[c] = "not asked for"
		}
	}
	for _, c := range want {
		if !slices.Contains(locked, c) {
			return nil, precondition("the archive's manifest includes %s, which its stored summary did not list (so it was not locked); restore it by naming the components", c)
		}
	}
	if slices.Contains(want, backupfmt.ComponentChroma) && w.Deps.Config.ChromaURL == "" && w.Vectors == nil {
		if explicit {
			return nil, precondition("chroma was asked for, but CHROMA_URL is not set: there is no vector store to restore into")
		}
		pl.skipped[backupfmt.ComponentChroma] = "CHROMA_URL is not set"
		want = slices.DeleteFunc(slices.Clone(want), func(c string) bool { return c == backupfmt.ComponentChroma })
	}
	pl.components = want

	for _, c := range pl.components {
		files := m.Components[c].Files
		var err error
		switch c {
		case backupfmt.ComponentSystem:
			err = w.planSystem(pl, files)
		case backupfmt.ComponentTarget:
			err = w.planTarget(pl, files)
		case backupfmt.ComponentChroma:
			err = w.planChroma(ctx, pl, files)
		}
		if err != nil {
			pl.close()
			return nil, err
		}
	}
	return pl, nil
}

func (w *Worker) planSystem(pl *restorePlan, files []backupfmt.File) error {
	if len(files) != 1 {
		return precondition("the system component holds %d files, expected one dump", len(files))
	}
	db := w.Deps.DB
	if db == nil {
		return precondition("this worker has no System DB connection")
	}
	f := files[0]
	want := map[store.Dialect]string{store.Postgres: backupfmt.KindPGDump, store.SQLite: backupfmt.KindSQLite}[db.Dialect()]
	if f.Kind != want {
		return precondition("the archive's System DB dump %s is %s, but the running System DB is %s (%s): it can only be restored into the same engine", f.Path, f.Kind, db.Dialect(), db.Describe())
	}
	pl.system = &f
	return nil
}

func (w *Worker) planTarget(pl *restorePlan, files []backupfmt.File) error {
	if len(files) != 1 || files[0].Kind != backupfmt.KindSQLite {
		return precondition("the target component holds %d files, expected one SQLite copy", len(files))
	}
	cfg := w.Deps.Config
	if cfg.TargetDBPath == "" || cfg.TargetDBSource == "" {
		return precondition("TARGET_DB_PATH and TARGET_DB_SOURCE must both be set to restore the Target DB")
	}
	rt, err1 := filepath.Abs(cfg.TargetDBPath)
	src, err2 := filepath.Abs(cfg.TargetDBSource)
	if err1 != nil || err2 != nil {
		return precondition("resolve the Target DB paths: %v", errors.Join(err1, err2))
	}
	if rt == src || sameFile(rt, src) {
		return precondition("TARGET_DB_PATH %s is the golden source TARGET_DB_SOURCE, which is never written", rt)
	}
	f := files[0]
	pl.target = &f
	return nil
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

func (w *Worker) planChroma(ctx context.Context, pl *restorePlan, files []backupfmt.File) error {
	for _, f := range files {
		name, ok := collectionOf(f.Path)
		if !ok || f.Kind != backupfmt.KindJSONL {
			return precondition("the chroma component holds %s, which is not <collection>.jsonl of a known collection (%s)", f.Path, strings.Join(vectors.Collections, ", "))
		}
		pl.chroma[name] = f
	}
	c, own, err := w.vectorsClient()
	if err != nil {
		return precondition("the vector store cannot be used: %v", err)
	}
	pl.vectors, pl.ownVectors = c, own
	if err := c.Heartbeat(ctx); err != nil {
		return jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("restore: the vector store (Chroma at %s) does not answer; nothing was changed: %w", c.URL(), err))
	}
	return nil
}

// vectorsClient returns the Chroma client and whether the caller owns it.
func (w *Worker) vectorsClient() (*vectors.Client, bool, error) {
	if w.Vectors != nil {
		c, err := w.Vectors()
		return c, false, err
	}
	cfg := w.Deps.Config
	emb, err := vectors.NewEmbedder(cfg.Embedding)
	if err != nil {
		return nil, false, fmt.Errorf("EMBEDDING_PROVIDER=%s: %w", cfg.Embedding.Provider, err)
	}
	c, err := vectors.New(cfg.ChromaURL, emb, vectors.Options{})
	if err != nil {
		return nil, false, err
	}
	return c, true, nil
}

// collectionOf returns the collection of chroma/<collection>.jsonl.
func collectionOf(p string) (string, bool) {
	dir, file := path.Split(p)
	name, ok := strings.CutSuffix(file, ".jsonl")
	if dir != backupfmt.ComponentChroma+"/" || !ok || !vectors.ValidCollection(name) {
		return "", false
	}
	return name, true
}

func precondition(format string, args ...any) error {
	return jobs.Permanent(jobs.CodePreconditionFailed, fmt.Errorf("restore: "+format+"; nothing was changed", args...))
}

// componentMeta returns the manifest's free-form Meta of a component
// re-decoded with json.Number, so integers stay integers.
func componentMeta(m backupfmt.Manifest, component string) map[string]any {
	raw, err := json.Marshal(m.Components[component].Meta)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out map[string]any
	if dec.Decode(&out) != nil {
		return nil
	}
	return out
}

// countsOf reads a table → rows map from a manifest Meta value; ok is false
// when v is not such a map.
func countsOf(v any) (snapshot.Counts, bool) {
	mm, ok := v.(map[string]any)
	if !ok || len(mm) == 0 {
		return nil, false
	}
	out := snapshot.Counts{}
	for k, x := range mm {
		n, ok := x.(json.Number)
		if !ok {
			return nil, false
		}
		i, err := n.Int64()
		if err != nil {
			return nil, false
		}
		out[k] = i
	}
	return out, true
}
