package httpapi

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/store"
)

// guardTimeout bounds the production guard's read of the admins.
const guardTimeout = 10 * time.Second

// ErrDefaultAdminPassword is wrapped by New's refusal to start in
// production while an active admin has a known default password.
var ErrDefaultAdminPassword = fmt.Errorf("an active admin still has a known default password")

// refuseDefaultPasswords is the production guard: with APP_ENV=production
// the API does not start while an active admin's password is one of
// KnownDefaultPasswords, and the error names the accounts (never the
// password). The way back: log in and POST /auth/password, or run the init
// binary with --reset-admin-password.
func refuseDefaultPasswords(cfg config.Config, db *store.DB) error {
	if cfg.AppEnv != config.Production {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), guardTimeout)
	defer cancel()
	admins, err := db.ActiveAdmins(ctx)
	if err != nil {
		return fmt.Errorf("httpapi: production guard: read admins: %w", err)
	}
	var bad []string
	for _, u := range admins {
		for _, pw := range KnownDefaultPasswords {
			if auth.CheckPassword(u.PasswordHash, pw) {
				bad = append(bad, u.Email)
				break
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("httpapi: APP_ENV=production: %w: %s; change it (POST /auth/password) or reset it (init --reset-admin-password=EMAIL) before starting in production",
			ErrDefaultAdminPassword, strings.Join(bad, ", "))
	}
	return nil
}
