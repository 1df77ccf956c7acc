package allinone_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/config"
)

// TestAuditTrailHoldsNoSecretAndAnExternalSubscriberSeesEachEventOnce runs
// logins (good and bad), a denied request and an init job, then follows the
// AUDIT stream the way an outside service would — its own durable
// consumer — and checks it sees every event exactly once, in stream order,
// and that no event holds a password, token or the JWT secret.
func TestAuditTrailHoldsNoSecretAndAnExternalSubscriberSeesEachEventOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := start(t, dir)
	const wrongPassword = "Wr0ng-Guess-Not-In-Any-Event"
	// The admin exists only once init has run: log in when it has.
	token := in.loginWhenReady(t)
	in.call(t, "POST", "/auth/login", "", map[string]string{"email": "admin@example.com", "password": wrongPassword}, nil)
	if code := in.call(t, "GET", "/admin/db/health", "not-a-token", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("forged token: %d", code)
	}
	var accepted struct {
		TaskID string `json:"task_id"`
	}
	in.call(t, "POST", "/admin/db/init", token, nil, &accepted)
	in.waitFinal(t, token, accepted.TaskID)

	ctx := context.Background()
	js := in.deps.Bus.JS
	stream, err := js.Stream(ctx, "AUDIT")
	if err != nil {
		t.Fatal(err)
	}
	// The subscriber: its own durable consumer, explicit acks.
	cons, err := js.CreateOrUpdateConsumer(ctx, "AUDIT", jetstream.ConsumerConfig{Durable: "external-siem", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := int(info.State.Msgs)
	if want < 6 {
		t.Fatalf("only %d audit events in the stream", want)
	}
	secret, _ := os.ReadFile(filepath.Join(dir, "jwt.secret"))
	secrets := []string{config.DefaultAdminPassword, wrongPassword, token, "not-a-token"}
	if s := strings.TrimSpace(string(secret)); s != "" {
		secrets = append(secrets, s)
	}
	seen := map[string]bool{}
	actions := map[string]int{}
	var lastSeq uint64
	for len(seen) < want {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, _ := m.Metadata()
			if md.Sequence.Stream <= lastSeq {
				t.Fatalf("event at stream seq %d after %d: out of order", md.Sequence.Stream, lastSeq)
			}
			lastSeq = md.Sequence.Stream
			var e audit.Event
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				t.Fatalf("event %d: %v", md.Sequence.Stream, err)
			}
			if seen[e.ID] {
				t.Fatalf("event %s delivered twice", e.ID)
			}
			seen[e.ID] = true
			actions[e.Action]++
			for _, s := range secrets {
				if strings.Contains(string(m.Data()), s) {
					t.Fatalf("event %s (%s) contains a secret", e.ID, e.Action)
				}
			}
			_ = m.Ack()
		}
		if n == 0 {
			t.Fatalf("subscriber got %d of %d events", len(seen), want)
		}
	}
	t.Logf("audit actions: %v", actions)
	for _, a := range []string{"auth.login", "auth.denied", "init.requested", "init.started", "init.succeeded", "user.created"} {
		if actions[a] == 0 {
			t.Errorf("no %s event among %v", a, actions)
		}
	}
}
