package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

func ptr[T any](v T) *T { return new(v) }

// TestAccounts runs the account functions against both dialects: create,
// list, patch (raising the token version only on a real change), the
// last-admin guard on demote/deactivate/delete, passwords, logout
// revocations and service tokens.
func TestAccounts(t *testing.T) {
	t.Parallel()
	for _, d := range testkit.Dialects {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			db := d.SystemDB(t)

			admin, err := db.CreateUser(ctx, store.NewUser{Email: " Admin@Example.com ", PasswordHash: "h1", Role: store.RoleAdmin})
			if err != nil {
				t.Fatal(err)
			}
			if admin.Email != "admin@example.com" || !admin.Active || admin.MustChangePassword || admin.TokenVersion != 0 || admin.PasswordChangedAt.IsZero() {
				t.Fatalf("created admin = %+v", admin)
			}
			if _, err := db.CreateUser(ctx, store.NewUser{Email: "ADMIN@example.com", PasswordHash: "h", Role: store.RoleViewer}); !errors.Is(err, store.ErrExists) {
				t.Fatalf("duplicate e-mail: %v, want ErrExists", err)
			}
			op, err := db.CreateUser(ctx, store.NewUser{Email: "op@example.com", PasswordHash: "h2", Role: store.RoleOperator, MustChangePassword: true})
			if err != nil || !op.MustChangePassword {
				t.Fatalf("create operator: %+v %v", op, err)
			}
			users, err := db.ListUsers(ctx)
			if err != nil || len(users) != 2 || users[0].ID != admin.ID || users[1].ID != op.ID {
				t.Fatalf("ListUsers = %+v, %v", users, err)
			}

			// The last admin: demote, deactivate and delete are refused.
			for name, change := range map[string]func() error{
				"demote": func() error {
					_, err := db.UpdateUser(ctx, admin.ID, store.UserPatch{Role: ptr(store.RoleViewer)})
					return err
				},
				"deactivate": func() error { _, err := db.UpdateUser(ctx, admin.ID, store.UserPatch{Active: new(false)}); return err },
				"delete":     func() error { _, err := db.DeleteUser(ctx, admin.ID); return err },
			} {
				if err := change(); !errors.Is(err, store.ErrLastAdmin) {
					t.Errorf("%s the last admin: %v, want ErrLastAdmin", name, err)
				}
			}
			if u, _ := db.UserByID(ctx, admin.ID); u.Role != store.RoleAdmin || !u.Active || u.TokenVersion != 0 {
				t.Fatalf("a refused change changed the admin: %+v", u)
			}

			// A no-op patch keeps the version; a real one raises it.
			same, err := db.UpdateUser(ctx, op.ID, store.UserPatch{Role: ptr(store.RoleOperator), Active: new(true)})
			if err != nil || same.TokenVersion != 0 {
				t.Fatalf("no-op patch: %+v %v", same, err)
			}
			promoted, err := db.UpdateUser(ctx, op.ID, store.UserPatch{Role: ptr(store.RoleAdmin)})
			if err != nil || promoted.Role != store.RoleAdmin || promoted.TokenVersion != 1 {
				t.Fatalf("promote: %+v %v", promoted, err)
			}
			// With a second admin the first may go.
			if _, err := db.UpdateUser(ctx, admin.ID, store.UserPatch{Active: new(false)}); err != nil {
				t.Fatalf("deactivate one of two admins: %v", err)
			}
			if admins, err := db.ActiveAdmins(ctx); err != nil || len(admins) != 1 || admins[0].ID != op.ID {
				t.Fatalf("ActiveAdmins = %+v, %v", admins, err)
			}
			if _, err := db.DeleteUser(ctx, op.ID); !errors.Is(err, store.ErrLastAdmin) {
				t.Fatalf("delete the remaining active admin: %v", err)
			}
			if _, err := db.DeleteUser(ctx, admin.ID); err != nil {
				t.Fatalf("delete an inactive admin: %v", err)
			}
			if _, err := db.UserByID(ctx, admin.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("deleted user: %v", err)
			}
			if _, err := db.UpdateUser(ctx, 9999, store.UserPatch{Active: new(true)}); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("patch unknown: %v", err)
			}

			// Passwords.
			u, err := db.SetPassword(ctx, op.ID, "h3", false)
			if err != nil || u.PasswordHash != "h3" || u.MustChangePassword || u.TokenVersion != promoted.TokenVersion+1 {
				t.Fatalf("SetPassword: %+v %v", u, err)
			}

			// Logout revocations.
			if err := db.RevokeToken(ctx, "jti-1", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := db.RevokeToken(ctx, "jti-1", time.Now().Add(time.Hour)); err != nil {
				t.Fatalf("revoke twice: %v", err)
			}
			for jti, want := range map[string]bool{"jti-1": true, "jti-2": false} {
				if got, err := db.TokenRevoked(ctx, jti); err != nil || got != want {
					t.Errorf("TokenRevoked(%s) = %v, %v; want %v", jti, got, err, want)
				}
			}

			// Service tokens.
			exp := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Microsecond)
			st, err := db.CreateServiceToken(ctx, store.ServiceToken{Name: "ci", TokenHash: "abc", Role: store.RoleOperator, CreatedBy: "op@example.com", ExpiresAt: exp})
			if err != nil || st.ID == 0 || !st.ExpiresAt.Equal(exp) || !st.LastUsedAt.IsZero() {
				t.Fatalf("CreateServiceToken: %+v %v", st, err)
			}
			if _, err := db.CreateServiceToken(ctx, store.ServiceToken{Name: "ci", TokenHash: "def", Role: store.RoleViewer, CreatedBy: "x", ExpiresAt: exp}); !errors.Is(err, store.ErrExists) {
				t.Fatalf("duplicate name: %v", err)
			}
			used := time.Now().UTC().Truncate(time.Microsecond)
			if err := db.TouchServiceToken(ctx, st.ID, used); err != nil {
				t.Fatal(err)
			}
			got, err := db.ServiceTokenByHash(ctx, "abc")
			if err != nil || got.Name != "ci" || !got.LastUsedAt.Equal(used) {
				t.Fatalf("ServiceTokenByHash: %+v %v", got, err)
			}
			if list, err := db.ListServiceTokens(ctx); err != nil || len(list) != 1 {
				t.Fatalf("ListServiceTokens = %+v, %v", list, err)
			}
			if _, err := db.DeleteServiceToken(ctx, st.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ServiceTokenByHash(ctx, "abc"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("revoked token still found: %v", err)
			}
			if _, err := db.DeleteServiceToken(ctx, st.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("delete twice: %v", err)
			}
		})
	}
}

// TestLastAdminGuardHoldsUnderConcurrentChanges: two admins deactivated at
// the same moment from two connections: one change wins, the other is
// ErrLastAdmin, and one active admin remains, on both dialects.
func TestLastAdminGuardHoldsUnderConcurrentChanges(t *testing.T) {
	t.Parallel()
	for _, d := range testkit.Dialects {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			db := d.SystemDB(t)
			for round := range 5 {
				var ids [2]int64
				for i := range ids {
					u, err := db.CreateUser(ctx, store.NewUser{Email: fmt.Sprintf("a%d-%d@example.com", round, i), PasswordHash: "h", Role: store.RoleAdmin})
					if err != nil {
						t.Fatal(err)
					}
					ids[i] = u.ID
				}
				var errs [2]error
				var wg sync.WaitGroup
				for i, id := range ids {
					wg.Go(func() { _, errs[i] = db.UpdateUser(ctx, id, store.UserPatch{Active: new(false)}) })
				}
				wg.Wait()
				lastAdmin := 0
				for _, err := range errs {
					switch {
					case errors.Is(err, store.ErrLastAdmin):
						lastAdmin++
					case err != nil:
						t.Fatalf("round %d: %v", round, err)
					}
				}
				admins, err := db.ActiveAdmins(ctx)
				if err != nil || len(admins) != 1 || lastAdmin != 1 {
					t.Fatalf("round %d: %d refused, active admins %+v (%v); want 1 and 1", round, lastAdmin, admins, err)
				}
				// Leave no admin from this round for the next (plain SQL: the
				// guard itself would keep the last one).
				if _, err := db.SQL.ExecContext(ctx, "DELETE FROM users"); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
