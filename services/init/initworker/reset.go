package initworker

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/store"
)

// ResetActor is the audit actor of a password reset by the init binary.
const ResetActor = "init --reset-admin-password"

// ErrNotAdmin is returned by ResetAdminPassword for a user who is not an
// admin.
var ErrNotAdmin = errors.New("not an admin")

// ResetAdminPassword is the way back in for a locked-out operator (init
// --reset-admin-password=EMAIL): it migrates the System DB, gives the
// admin email a generated password, written once to out, reactivates it,
// and forces a change at the next login; every token of the user stops
// working. The reset is audited on deps.Audit when there is one (the
// event never holds the password) and logged on deps.Log either way.
func ResetAdminPassword(ctx context.Context, deps app.Deps, email string, out io.Writer) error {
	email = store.NormalizeEmail(email)
	if _, err := deps.DB.Migrate(ctx); err != nil {
		return fmt.Errorf("reset admin password: %w", err)
	}
	u, err := deps.DB.UserByEmail(ctx, email)
	if err != nil {
		return fmt.Errorf("reset admin password: %w", err)
	}
	if u.Role != store.RoleAdmin {
		return fmt.Errorf("reset admin password: %s is %s, %w", email, u.Role, ErrNotAdmin)
	}
	pw, err := auth.GeneratePassword()
	if err != nil {
		return fmt.Errorf("reset admin password: %w", err)
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return fmt.Errorf("reset admin password: %w", err)
	}
	active := true
	if _, err := deps.DB.UpdateUser(ctx, u.ID, store.UserPatch{Active: &active}); err != nil {
		return fmt.Errorf("reset admin password: reactivate: %w", err)
	}
	if _, err := deps.DB.SetPassword(ctx, u.ID, hash, true); err != nil {
		return fmt.Errorf("reset admin password: %w", err)
	}
	if deps.Log != nil {
		deps.Log.Warn("admin password reset; it must be changed at the next login", "user", email, "actor", ResetActor, "audited", deps.Audit != nil)
	}
	if deps.Audit != nil {
		deps.Audit.Record(ctx, audit.Event{Actor: ResetActor, Action: "user.password_reset", Resource: "user", Outcome: audit.Success,
			Detail: map[string]any{"user_id": u.ID, "email": email, "must_change_password": true}})
	}
	if _, err := fmt.Fprintf(out, "new password for %s (shown once; it must be changed at the next login):\n%s\n", email, pw); err != nil {
		return fmt.Errorf("reset admin password: print: %w", err)
	}
	return nil
}
