package backupstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/bus"
)

// Stale chunks in the object store, the NATS counterpart of the local
// store's stale temp files.
//
// The object store keeps an object as chunk messages on $O.BACKUPS.C.<nuid>
// (a fresh NUID for every Put) and one meta message on
// $O.BACKUPS.M.<base64url name> whose ObjectInfo.NUID names that subject.
// A writer killed in the middle of a Put (SIGKILL, a lost pod) leaves the
// chunks it had published with no meta referring to them: nothing lists or
// reads them, and nothing else would ever free their space. So does a
// writer killed between the new meta and the purge of the old chunks of a
// replaced object, or between the delete marker (a meta with Deleted set,
// still naming the old NUID) and the purge of a deleted object's chunks.

const (
	streamBackups = "OBJ_" + bus.BucketBackups        // the bucket's stream
	subjectsAll   = "$O." + bus.BucketBackups + ".>"  // chunks and metas
	chunkPrefix   = "$O." + bus.BucketBackups + ".C." // + nuid
	metaPrefix    = "$O." + bus.BucketBackups + ".M." // + base64url name
	cleanEvery    = StaleAfter / 4                    // see maybeRemoveStale
)

// Cleanup is the outcome of one removal of stale chunks.
type Cleanup struct {
	At      time.Time // when it started
	Removed int       // chunk subjects (abandoned objects) purged
	// Err is why it stopped early (nil if it looked at every chunk
	// subject); what it had removed stays removed.
	Err error
}

// RemoveStale purges the chunks that no object's meta refers to and whose
// last message is older than StaleAfter: those of a writer killed in the
// middle of a Put (or of a replace or Delete). A Put in progress has no
// meta yet but publishes chunks continuously, so its chunks are never that
// old (one whose source sends nothing for StaleAfter is taken for a
// killed one, as a local temp file left alone that long is); chunks of
// live objects are never touched. It returns how many abandoned chunk
// subjects were purged.
//
// It needs the purge right on the bucket's stream, which Put and Delete
// need anyway ($JS.API.STREAM.PURGE.OBJ_BACKUPS in deploy/nats: the backup
// and restore users, not the API's). Put and Delete call it on their own at
// most every StaleAfter/4; LastCleanup tells how that went.
func (n *NATS) RemoveStale(ctx context.Context) (int, error) {
	return n.runCleanup(ctx, time.Now().Add(-StaleAfter))
}

// LastCleanup returns the outcome of the last removal of stale chunks by
// this store (zero if none ran yet).
func (n *NATS) LastCleanup() Cleanup {
	if c := n.lastClean.Load(); c != nil {
		return *c
	}
	return Cleanup{}
}

// maybeRemoveStale runs RemoveStale, bounded by OpTimeout, unless this
// store ran it less than cleanEvery ago or is running it now. It is best
// effort: the outcome is kept for LastCleanup and never fails the caller.
func (n *NATS) maybeRemoveStale(ctx context.Context) {
	if c := n.lastClean.Load(); c != nil && time.Since(c.At) < cleanEvery {
		return
	}
	if !n.cleaning.CompareAndSwap(false, true) {
		return // another Put or Delete of this store is cleaning
	}
	defer n.cleaning.Store(false)
	cctx, cancel := opCtx(ctx)
	defer cancel()
	_, _ = n.runCleanup(cctx, time.Now().Add(-StaleAfter))
}

// runCleanup is removeStale, its outcome kept for LastCleanup.
func (n *NATS) runCleanup(ctx context.Context, before time.Time) (int, error) {
	c := Cleanup{At: time.Now()}
	c.Removed, c.Err = n.removeStale(ctx, before)
	n.lastClean.Store(&c)
	return c.Removed, c.Err
}

// removeStale purges every chunk subject that no live (not deleted) meta
// refers to and whose last message was stored before before. The subjects
// are listed before the metas are read, so an object whose Put commits in
// between is either referenced or has just published its last chunk; a
// deleted object's marker keeps its old NUID but refers to nothing live.
// Each purge stops at the last message looked at. Any doubt (a meta that
// cannot be read, an error) stops it without purging more.
func (n *NATS) removeStale(ctx context.Context, before time.Time) (int, error) {
	stream, err := n.js.Stream(ctx, streamBackups)
	if err != nil {
		return 0, fmt.Errorf("backup store: remove stale chunks: stream %s: %w", streamBackups, err)
	}
	// Per-subject counts; nats.go asks for the further pages itself when
	// the server pages them (more than 100,000 subjects).
	si, err := stream.Info(ctx, jetstream.WithSubjectFilter(subjectsAll))
	if err != nil {
		return 0, fmt.Errorf("backup store: remove stale chunks: subjects of %s: %w", streamBackups, err)
	}
	var chunks []string
	metas := 0
	for subj := range si.State.Subjects {
		switch {
		case strings.HasPrefix(subj, chunkPrefix) && validNUID(subj[len(chunkPrefix):]):
			chunks = append(chunks, subj)
		case strings.HasPrefix(subj, metaPrefix):
			metas++
		}
	}
	if len(chunks) == 0 {
		return 0, nil
	}
	sort.Strings(chunks)

	// Every meta, deleted ones too, so that their number can be checked:
	// List skips a meta it cannot decode, whose chunks must not be taken
	// for abandoned ones.
	objs, err := n.obs.List(ctx, jetstream.ListObjectsShowDeleted())
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, fmt.Errorf("backup store: remove stale chunks: list metas of %s: %w", bus.BucketBackups, err)
	}
	if len(objs) < metas {
		return 0, fmt.Errorf("backup store: remove stale chunks: %s has %d meta subjects but only %d readable metas: removing nothing", bus.BucketBackups, metas, len(objs))
	}
	live := make(map[string]bool, len(objs))
	for _, oi := range objs {
		if !oi.Deleted && oi.NUID != "" {
			live[oi.NUID] = true
		}
	}

	removed := 0
	for _, subj := range chunks {
		if live[subj[len(chunkPrefix):]] {
			continue
		}
		last, err := stream.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // purged meanwhile (another pod cleaning, a failed Put)
		}
		if err != nil {
			return removed, fmt.Errorf("backup store: remove stale chunks: last message of %s: %w", subj, err)
		}
		if !last.Time.Before(before) {
			continue // a Put in progress, or one killed too recently to tell
		}
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subj), jetstream.WithPurgeSequence(last.Sequence+1)); err != nil {
			return removed, fmt.Errorf("backup store: remove stale chunks: purge %s: %w", subj, err)
		}
		removed++
	}
	return removed, nil
}

// validNUID reports whether s can be the NUID token of a chunk subject.
func validNUID(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".*>")
}
