package backupstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// A full object store, the NATS counterpart of ENOSPC.
//
// JetStream refuses a message of the bucket's stream, with an API error in
// the publish ack, when storing it would pass a limit:
//
//   - the stream's own limit (the bucket's MaxBytes; the object store
//     discards new messages): err_code 10077 (JSStreamStoreFailedF) with
//     the store's error as description, "maximum bytes exceeded"
//     ("maximum messages exceeded" for a MaxMsgs set on the stream by
//     hand);
//   - the server's JetStream storage (max_file_store, JetStreamMaxStore):
//     err_code 10023 (JSInsufficientResourcesErr), "insufficient
//     resources";
//   - the account's JetStream storage limit: err_code 10002
//     (JSAccountResourcesExceededErr), "resource limits exceeded for
//     account".
//
// nats.go returns these as *jetstream.APIError but has neither constants
// nor sentinel errors for them, so they are matched by error code here;
// 10077 also covers failures that have nothing to do with space (a
// message too large, too many per subject), so for it the description is
// matched too, the only place where text is looked at. A volume under the
// server that runs out of space is not among them: the server logs it and
// stops JetStream without answering the publish, which times out like any
// outage.
const (
	jsErrAccountResourcesExceeded jetstream.ErrorCode = 10002 // JSAccountResourcesExceededErr
	jsErrInsufficientResources    jetstream.ErrorCode = 10023 // JSInsufficientResourcesErr
	jsErrStreamStoreFailed        jetstream.ErrorCode = 10077 // JSStreamStoreFailedF: "{err}"

	// Descriptions of a 10077 that mean the stream is full: the texts of
	// nats-server's ErrMaxBytes and ErrMaxMsgs.
	storeMaxBytes = "maximum bytes exceeded"
	storeMaxMsgs  = "maximum messages exceeded"
)

// isNoSpace reports whether err, from a publish to the bucket's stream
// (or from nats.go's object store wrapping one), says JetStream cannot
// store more: the bucket, the server or the account is full.
func isNoSpace(err error) bool {
	var ae *jetstream.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode {
	case jsErrInsufficientResources, jsErrAccountResourcesExceeded:
		return true
	case jsErrStreamStoreFailed:
		return strings.Contains(ae.Description, storeMaxBytes) || strings.Contains(ae.Description, storeMaxMsgs)
	}
	return false
}

// noSpace marks an error that says the object store is full (isNoSpace)
// with ErrNoSpace, naming the store; other errors pass unchanged.
func (n *NATS) noSpace(err error) error {
	if isNoSpace(err) {
		return fmt.Errorf("%w (%s): %w", ErrNoSpace, n.Describe(), err)
	}
	return err
}

// eofReader tells whether its reader reached its end: nats.go's Put
// publishes an object's meta only then, so a Put that failed earlier left
// no meta to remove.
//
// atEOF, when set, runs once at the end, before EOF is returned; its error
// is returned instead, so the Put fails before anything is committed.
type eofReader struct {
	r     io.Reader
	eof   bool
	atEOF func() error
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF && !e.eof && e.atEOF != nil {
		if serr := e.atEOF(); serr != nil {
			return n, serr
		}
	}
	if err == io.EOF {
		e.eof = true
	}
	return n, err
}

// removeFailedPut removes the object name if a failed Put left it listed.
//
// nats.go's Put publishes the object's meta message right after the last
// chunk, without waiting for the chunks' acks. When the server refuses a
// late chunk (the bucket is full: the last chunk does not fit but the
// small meta does) or a chunk's ack times out, Put returns the error and
// purges the chunks, but the meta stays: a complete-looking object whose
// chunks are gone would be listed. The name was not live when Put began
// (Put checks that first, and a name carries its job's id), so a live meta
// now can only be this Put's.
func (n *NATS) removeFailedPut(ctx context.Context, name string) error {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	if _, err := n.obs.GetInfo(ctx, name); errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("look for a meta it left: %w", err)
	}
	if err := n.purgeObject(ctx, name); err != nil {
		return fmt.Errorf("remove the meta it left: %w", err)
	}
	return nil
}

// purgeObject removes the object name without publishing anything, so it
// works on a full stream, where even a delete marker is refused: its meta
// subject up to the meta message read here (it stops being listed), then
// the chunks that meta names. A meta that cannot be read stops it before
// anything is purged.
func (n *NATS) purgeObject(ctx context.Context, name string) error {
	stream, err := n.js.Stream(ctx, streamBackups)
	if err != nil {
		return fmt.Errorf("stream %s: %w", streamBackups, err)
	}
	metaSubj := metaPrefix + base64.URLEncoding.EncodeToString([]byte(name))
	last, err := stream.GetLastMsgForSubject(ctx, metaSubj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("meta of %s: %w", name, err)
	}
	var oi jetstream.ObjectInfo
	if err := json.Unmarshal(last.Data, &oi); err != nil {
		return fmt.Errorf("decode the meta of %s (sequence %d): %w", name, last.Sequence, err)
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(metaSubj), jetstream.WithPurgeSequence(last.Sequence+1)); err != nil {
		return fmt.Errorf("purge %s: %w", metaSubj, err)
	}
	if validNUID(oi.NUID) {
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(chunkPrefix+oi.NUID)); err != nil {
			return fmt.Errorf("purge the chunks of %s: %w", name, err)
		}
	}
	return nil
}
