package locks_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/locks"
)

// Take with a restore's policy: wait up to a minute for a lease another
// operation holds, reporting who holds it, take over a lease of an
// earlier attempt of the same job, and release the leases even when the
// job was cancelled.
func ExampleTake() {
	dir, err := os.MkdirTemp("", "locks-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{Listen: "127.0.0.1:0", StoreDir: dir, ServerName: "locks-example"})
	if err != nil {
		log.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	b, err := bus.Attach(ctx, nc, bus.Settings{Replicas: 1}, true, slog.New(slog.DiscardHandler))
	if err != nil {
		log.Fatal(err)
	}

	// A backup holds the target lease for a moment.
	backup, err := locks.Acquire(ctx, b.Locks, locks.Target, locks.Holder{Owner: "01BACKUP", Operation: "backup.create"}, time.Second)
	if err != nil {
		log.Fatal(err)
	}
	time.AfterFunc(200*time.Millisecond, func() { _ = backup.Release(context.Background()) })

	set, err := locks.Take(ctx, b.Locks, locks.Order, locks.Holder{Owner: "01RESTORE", Operation: "restore.run"}, locks.TakeOptions{
		Wait: time.Minute, Poll: 50 * time.Millisecond, ReportEvery: 5 * time.Second, TakeOverOwn: true,
		Progress: func(_ context.Context, held *locks.HeldError) error {
			fmt.Printf("waiting: %s is held by %s\n", held.Name, held.Holder.Operation)
			return nil
		},
	})
	if errors.Is(err, locks.ErrHeld) {
		fmt.Println("still held after a minute: retry the job later")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := set.ReleaseDetached(ctx); err != nil {
			log.Print(err)
		}
	}()
	fmt.Printf("took %d leases\n", len(set))
	// Output:
	// waiting: target is held by backup.create
	// took 3 leases
}
