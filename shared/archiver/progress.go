package archiver

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// reporter throttles byte/record progress from dump callbacks into the
// job's progress, and stops the archive when progress fails (cancelled).
type reporter struct {
	fn     func(int, string) error
	cancel context.CancelCauseFunc

	mu   sync.Mutex
	last time.Time
	err  error
}

// step reports at once (component boundaries).
func (r *reporter) step(pct int, step string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.last = time.Now()
	if err := r.fn(pct, step); err != nil {
		r.err = err
		r.cancel(err)
		return err
	}
	return nil
}

// tick reports at most once per progressEvery; an error cancels the archive.
func (r *reporter) tick(pct int, step string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil || time.Since(r.last) < progressEvery {
		return
	}
	r.last = time.Now()
	if err := r.fn(pct, step); err != nil {
		r.err = err
		r.cancel(err)
	}
}

// fraction is span·done/total, 0 when the total is unknown.
func fraction(span int, done, total int64) int {
	if total <= 0 || done <= 0 {
		return 0
	}
	return int(int64(span) * min(done, total) / total)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// progressReader counts the bytes read through it.
type progressReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if n > 0 {
		p.fn(p.n)
	}
	return n, err
}
