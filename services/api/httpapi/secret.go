package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/keyfile"
)

// SecretFile is the name, under DATA_DIR, of the development JWT secret.
const SecretFile = "jwt.secret"

// jwtSecret returns the HMAC key of the API's tokens: JWT_SECRET when set;
// otherwise (development only) the key kept in DATA_DIR/jwt.secret,
// created with 32 random bytes on first use, so tokens survive restarts
// and every process sharing DATA_DIR agrees on it.
func jwtSecret(cfg config.Config, log *slog.Logger) ([]byte, error) {
	if cfg.JWTSecret != "" {
		if len(cfg.JWTSecret) < auth.MinSecretBytes {
			return nil, fmt.Errorf("httpapi: JWT_SECRET must be at least %d characters", auth.MinSecretBytes)
		}
		return []byte(cfg.JWTSecret), nil
	}
	if cfg.AppEnv == config.Production {
		return nil, errors.New("httpapi: JWT_SECRET is required in production")
	}
	dir := cfg.DataDir
	if dir == "" {
		dir = "."
	}
	return loadOrCreateSecret(filepath.Join(dir, SecretFile), log)
}

func loadOrCreateSecret(path string, log *slog.Logger) ([]byte, error) {
	key, created, err := keyfile.LoadOrCreate(path, auth.MinSecretBytes)
	if err != nil {
		return nil, fmt.Errorf("httpapi: jwt secret: %w", err)
	}
	if created {
		log.Info("generated a development JWT secret (set JWT_SECRET in production)", "path", path)
	}
	return key, nil
}
