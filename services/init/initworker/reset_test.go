package initworker_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/services/init/initworker"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

// TestInitAdminMustChangeItsPasswordOnlyInProduction: the admin init
// creates from INIT_ADMIN_PASSWORD must change it first in production
// (that password lives in deployment config), not in development.
func TestInitAdminMustChangeItsPasswordOnlyInProduction(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{"APP_ENV": "development"}, false},
		{map[string]string{"APP_ENV": "production", "JWT_SECRET": strings.Repeat("j", 32)}, true},
	} {
		t.Run(tc.env["APP_ENV"], func(t *testing.T) {
			t.Parallel()
			cfg := newConfig(t, tc.env)
			db := openDB(t, cfg)
			if _, err := initworker.RunOnce(context.Background(), app.Deps{Config: cfg, DB: db, Log: testkit.Logger(t)}); err != nil {
				t.Fatalf("init: %v", err)
			}
			u, err := db.UserByEmail(context.Background(), "admin@example.com")
			if err != nil || u.MustChangePassword != tc.want {
				t.Fatalf("admin %+v, %v; want must_change_password %v", u, err, tc.want)
			}
		})
	}
}

// TestResetAdminPasswordPrintsANewOneOnceForcesAChangeAndIsAudited: the
// locked-out operator's way back in: a generated password printed once,
// the old one refused, the account reactivated, a change forced, the
// token version raised, and a user.password_reset audit event without
// the password; a non-admin is refused.
func TestResetAdminPasswordPrintsANewOneOnceForcesAChangeAndIsAudited(t *testing.T) {
	t.Parallel()
	te := testkit.NewEnv(t)
	ctx := context.Background()
	h, err := auth.HashPassword("first-password-1")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := te.DB.CreateUser(ctx, store.NewUser{Email: "root@example.com", PasswordHash: h, Role: store.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := te.DB.CreateUser(ctx, store.NewUser{Email: "viewer@example.com", PasswordHash: h, Role: store.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	deps := app.Deps{Config: te.Config, DB: te.DB, Log: testkit.Logger(t), Audit: audit.NewPublisher(te.Bus.JS, testkit.Logger(t))}
	var out bytes.Buffer
	if err := initworker.ResetAdminPassword(ctx, deps, "Root@Example.com", &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	pw := lines[len(lines)-1]
	u, err := te.DB.UserByID(ctx, admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !auth.CheckPassword(u.PasswordHash, pw) || auth.CheckPassword(u.PasswordHash, "first-password-1") || !u.MustChangePassword || !u.Active || u.TokenVersion <= admin.TokenVersion {
		t.Fatalf("after the reset: %+v (printed %q)", u, out.String())
	}
	if err := initworker.ResetAdminPassword(ctx, deps, "viewer@example.com", &bytes.Buffer{}); !errors.Is(err, initworker.ErrNotAdmin) {
		t.Fatalf("reset of a viewer: %v, want ErrNotAdmin", err)
	}
	cons, err := te.Bus.JS.OrderedConsumer(ctx, bus.StreamAudit, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"audit.user.password_reset"}})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(msg.Data()), initworker.ResetActor) || strings.Contains(string(msg.Data()), pw) {
		t.Fatalf("audit event %s: want the reset actor, never the password", msg.Data())
	}
}
