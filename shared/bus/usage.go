package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Unlimited is the limit StreamUsage reports for a stream that neither
// its own MaxBytes nor the account's JetStream storage limit bounds.
const Unlimited = -1

// StreamUsage returns the bytes stream holds and the most it may hold:
// its MaxBytes, else the account's JetStream limit for the stream's
// storage type (file or memory), else Unlimited.
func StreamUsage(ctx context.Context, js jetstream.JetStream, stream string) (used, limit int64, err error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("stream %s info: %w", stream, err)
	}
	used = int64(info.State.Bytes)
	if info.Config.MaxBytes > 0 {
		return used, info.Config.MaxBytes, nil
	}
	acct, err := js.AccountInfo(ctx)
	if err != nil {
		return used, 0, fmt.Errorf("account info: %w", err)
	}
	limit = acct.Limits.MaxStore
	if info.Config.Storage == jetstream.MemoryStorage {
		limit = acct.Limits.MaxMemory
	}
	if limit <= 0 {
		limit = Unlimited
	}
	return used, limit, nil
}
