// Package ctxio makes long copies stop on context cancellation: a reader
// that fails its next Read once the context is done.
package ctxio

import (
	"context"
	"io"
)

// Reader wraps r so that Read returns ctx.Err() once ctx is done.
func Reader(ctx context.Context, r io.Reader) io.Reader { return reader{ctx: ctx, r: r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (r reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
