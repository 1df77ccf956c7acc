package backupstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/insightops/insightops/shared/ctxio"
	"io"
	"maps"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/bus"
)

// Object metadata keys.
const (
	metaKeyStoredAt = "insightops-stored-at" // RFC 3339: when Put completed, kept by SetMeta
	metaKeyMeta     = "insightops-meta"      // Meta as JSON
	metaKeySig      = "insightops-signature" // the signature of a sealed Put
)

// NATS keeps archives in the JetStream Object Store bucket BACKUPS, visible
// to every pod. It is safe for concurrent use.
type NATS struct {
	js       jetstream.JetStream
	obs      jetstream.ObjectStore
	replicas int
	// stall bounds how long one Read of an opened archive may wait for
	// data (DefaultReadStall); see Open.
	stall time.Duration
	// The removal of stale chunks (natsstale.go): one at a time, and the
	// outcome of the last one.
	cleaning  atomic.Bool
	lastClean atomic.Pointer[Cleanup]
}

// DefaultReadStall is how long a read of an archive from the object store
// may wait for its next chunk before it fails with ErrStalled. The object
// store delivers chunks over an ordered push consumer; when the cluster
// goes away under it (every node restarted) the consumer may never be
// recreated and a read without a deadline would wait for ever while the
// job's heartbeats keep it from being redelivered.
const DefaultReadStall = 30 * time.Second

// OpTimeout bounds one metadata operation on the object store (list,
// info, delete, meta update). nats.go's List waits on a watcher for the
// end of the initial values with no deadline of its own: after a cluster
// restart that marker can fail to come, and a job would hang holding its
// leases while its heartbeats keep it from being redelivered.
const OpTimeout = 30 * time.Second

// opCtx is ctx bounded by OpTimeout.
func opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, OpTimeout)
}

// ErrStalled means a read of an archive got no data for the stall timeout.
var ErrStalled = errors.New("backup store: read stalled (no data from the object store)")

var _ Store = (*NATS)(nil)

// NewNATS opens the bucket BACKUPS (bus.BucketBackups), creating it if
// missing with file storage and the given replicas. An existing bucket is
// used as it is (its replicas are not changed).
//
// Unlike NewLocal it removes nothing: the store may be opened by a user
// that can only read archives (the API's), while purging chunks left by a
// killed writer needs the purge right Put and Delete need anyway. The
// first Put or Delete does it instead (see RemoveStale).
func NewNATS(ctx context.Context, js jetstream.JetStream, replicas int) (*NATS, error) {
	if replicas < 1 {
		replicas = 1
	}
	obs, err := js.ObjectStore(ctx, bus.BucketBackups)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      bus.BucketBackups,
			Description: "insightops backup archives",
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // created by another pod meanwhile
			obs, err = js.ObjectStore(ctx, bus.BucketBackups)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("backup store: object store %s: %w", bus.BucketBackups, err)
	}
	n := &NATS{js: js, obs: obs, replicas: replicas, stall: DefaultReadStall}
	if st, err := obs.Status(ctx); err == nil {
		n.replicas = st.Replicas()
	}
	return n, nil
}

// Describe implements Store.
func (n *NATS) Describe() string {
	return fmt.Sprintf("NATS object store %s (R%d)", bus.BucketBackups, n.replicas)
}

// Put implements Store. The chunks are published as r is read and the
// object's meta message last: until then nothing is listed. When r fails or
// ctx is cancelled, the object store purges the chunks already sent (with a
// context that is not cancelled, so the purge itself is not skipped); a
// meta the failed Put left behind is purged too (removeFailedPut).
// JetStream refusing a message because the bucket, the server's storage
// or the account's is full (isNoSpace) is ErrNoSpace.
// Chunks a killed writer left long ago are removed first (maybeRemoveStale).
func (n *NATS) Put(ctx context.Context, name string, r io.Reader, opts ...PutOption) (Info, error) {
	o := putOpts(opts)
	if _, err := backupfmt.ParseArchiveName(name); err != nil {
		return Info{}, fmt.Errorf("backup store: put: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, err)
	}
	n.maybeRemoveStale(ctx)
	if _, err := n.obs.GetInfo(ctx, name); err == nil {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, ErrExists)
	} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, err)
	}
	h := sha256.New()
	meta := jetstream.ObjectMeta{
		Name:        name,
		Description: "insightops backup archive",
		Metadata:    map[string]string{metaKeyStoredAt: time.Now().UTC().Format(time.RFC3339Nano)},
	}
	src := &eofReader{r: io.TeeReader(ctxio.Reader(ctx, r), h)}
	var sig string
	if o.seal != nil {
		// At the end of the bytes, before the client marshals the object's
		// meta message (the commit), the signature goes into the metadata
		// map the client holds (the same map: ObjectMeta is copied by value).
		src.atEOF = func() error {
			s, err := o.sealed(name, hex.EncodeToString(h.Sum(nil)))
			if err != nil {
				return err
			}
			sig = s
			meta.Metadata[metaKeySig] = s
			return nil
		}
	}
	oi, err := n.obs.Put(context.WithoutCancel(ctx), meta, src)
	if err != nil {
		err = n.noSpace(err)
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%w)", ctxErr, err)
		}
		if src.eof { // only then may nats.go have published the meta
			if rerr := n.removeFailedPut(context.WithoutCancel(ctx), name); rerr != nil {
				err = fmt.Errorf("%w (and the failed put may still be listed: %w)", err, rerr)
			}
		}
		return Info{}, fmt.Errorf("backup store: put %s: %w", name, err)
	}
	info := n.info(oi)
	if sum := hex.EncodeToString(h.Sum(nil)); info.SHA256 != sum {
		_ = n.obs.Delete(context.WithoutCancel(ctx), name)
		return Info{}, fmt.Errorf("backup store: put %s: object digest %s differs from the bytes sent (%s)", name, info.SHA256, sum)
	}
	if info.Signature != sig {
		_ = n.obs.Delete(context.WithoutCancel(ctx), name)
		return Info{}, fmt.Errorf("backup store: put %s: the object's meta was committed without its signature (nats.go no longer shares the metadata map); deleted", name)
	}
	return info, nil
}

// info converts object info; the SHA-256 is the object's digest in hex.
func (n *NATS) info(oi *jetstream.ObjectInfo) Info {
	m, _ := decodeMeta([]byte(oi.Metadata[metaKeyMeta]))
	modified := oi.ModTime.UTC()
	if t, err := time.Parse(time.RFC3339Nano, oi.Metadata[metaKeyStoredAt]); err == nil {
		modified = t
	}
	var sum string
	if d, err := jetstream.DecodeObjectDigest(oi.Digest); err == nil && len(d) == sha256.Size {
		sum = hex.EncodeToString(d)
	}
	sig := oi.Metadata[metaKeySig]
	if len(sig) > MaxSignatureSize {
		sig = ""
	}
	return Info{Name: oi.Name, Size: int64(oi.Size), Modified: modified, SHA256: sum, Created: created(oi.Name, m), Meta: m, Signature: sig}
}

// List implements Store.
func (n *NATS) List(ctx context.Context) ([]Info, error) {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	objs, err := n.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return []Info{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backup store: list %s: %w", bus.BucketBackups, err)
	}
	infos := []Info{}
	for _, oi := range objs {
		if oi.Deleted || oi.Opts != nil && oi.Opts.Link != nil {
			continue
		}
		if _, err := backupfmt.ParseArchiveName(oi.Name); err != nil {
			continue
		}
		infos = append(infos, n.info(oi))
	}
	sortInfos(infos)
	return infos, nil
}

// getInfo returns the object's info, ErrNotFound for invalid and unknown names.
func (n *NATS) getInfo(ctx context.Context, op, name string) (*jetstream.ObjectInfo, error) {
	if err := checkName(op, name); err != nil {
		return nil, err
	}
	ctx, cancel := opCtx(ctx)
	defer cancel()
	oi, err := n.obs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("backup store: %s %s: %w", op, name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("backup store: %s %s: %w", op, name, err)
	}
	if oi.Opts != nil && oi.Opts.Link != nil {
		return nil, fmt.Errorf("backup store: %s %s: %w (a link, not an archive)", op, name, ErrNotFound)
	}
	return oi, nil
}

// Open implements Store. The reader checks the object's digest at its end:
// a mismatch is an error instead of EOF. Close it to release the consumer.
func (n *NATS) Open(ctx context.Context, name string) (io.ReadCloser, Info, error) {
	if _, err := n.getInfo(ctx, "open", name); err != nil {
		return nil, Info{}, err
	}
	res, err := n.obs.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, Info{}, fmt.Errorf("backup store: open %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("backup store: open %s: %w", name, err)
	}
	oi, err := res.Info()
	if err != nil {
		_ = res.Close()
		return nil, Info{}, fmt.Errorf("backup store: open %s: %w", name, err)
	}
	return newStallReader(res, n.stall), n.info(oi), nil
}

// stallReader fails a Read that waits longer than stall for data by
// closing the underlying result (which unblocks the Read); the time the
// caller spends between reads does not count.
type stallReader struct {
	rc      io.ReadCloser
	stall   time.Duration
	stalled atomic.Bool
}

func newStallReader(rc io.ReadCloser, stall time.Duration) *stallReader {
	return &stallReader{rc: rc, stall: stall}
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.stalled.Load() {
		return 0, ErrStalled
	}
	t := time.AfterFunc(s.stall, func() {
		s.stalled.Store(true)
		_ = s.rc.Close()
	})
	n, err := s.rc.Read(p)
	if !t.Stop() && s.stalled.Load() {
		return n, fmt.Errorf("%w for %s", ErrStalled, s.stall)
	}
	return n, err
}

func (s *stallReader) Close() error {
	if s.stalled.Load() {
		return nil // closed when it stalled
	}
	return s.rc.Close()
}

// Delete implements Store: a delete marker, then the chunks are purged.
// On a full store, where even the delete marker is refused, the object's
// meta and chunks are purged instead (purgeObject): pruning archives is how
// an operator frees a full store, so it must work then.
// Chunks a killed writer left long ago are removed too (maybeRemoveStale).
func (n *NATS) Delete(ctx context.Context, name string) error {
	if _, err := n.getInfo(ctx, "delete", name); err != nil {
		return err
	}
	n.maybeRemoveStale(ctx)
	dctx, cancel := opCtx(ctx)
	defer cancel()
	if err := n.obs.Delete(dctx, name); err != nil {
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("backup store: delete %s: %w", name, ErrNotFound)
		}
		if !isNoSpace(err) {
			return fmt.Errorf("backup store: delete %s: %w", name, err)
		}
		if perr := n.purgeObject(dctx, name); perr != nil {
			return fmt.Errorf("backup store: delete %s: the store is full, its delete marker was refused (%w), and purging it failed: %w", name, err, perr)
		}
	}
	return nil
}

// SetMeta implements Store: the object's metadata is republished with the
// new Meta (the chunks are untouched). On a full store the new meta message
// is refused (ErrNoSpace) and the old one stays.
func (n *NATS) SetMeta(ctx context.Context, name string, m Meta) error {
	oi, err := n.getInfo(ctx, "set meta", name)
	if err != nil {
		return err
	}
	b, err := encodeMeta(m)
	if err != nil {
		return fmt.Errorf("backup store: set meta %s: %w", name, err)
	}
	md := maps.Clone(oi.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	if md[metaKeyStoredAt] == "" {
		md[metaKeyStoredAt] = oi.ModTime.UTC().Format(time.RFC3339Nano)
	}
	md[metaKeyMeta] = string(b)
	uctx, cancel := opCtx(ctx)
	defer cancel()
	err = n.obs.UpdateMeta(uctx, name, jetstream.ObjectMeta{Name: name, Description: oi.Description, Headers: oi.Headers, Metadata: md})
	if errors.Is(err, jetstream.ErrUpdateMetaDeleted) || errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("backup store: set meta %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("backup store: set meta %s: %w", name, n.noSpace(err))
	}
	return nil
}

// Meta implements Store.
func (n *NATS) Meta(ctx context.Context, name string) (Meta, error) {
	oi, err := n.getInfo(ctx, "meta", name)
	if err != nil {
		return Meta{}, err
	}
	m, err := decodeMeta([]byte(oi.Metadata[metaKeyMeta]))
	if err != nil {
		return Meta{}, fmt.Errorf("backup store: meta of %s: %w", name, err)
	}
	return m, nil
}
