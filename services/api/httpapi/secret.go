package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/config"
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
	if key, err := readSecret(path, log); err == nil {
		return key, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("httpapi: create directory of %s: %w", path, err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("httpapi: generate jwt secret: %w", err)
	}
	// Write a temporary file, then link it into place: the link fails if
	// another process created the secret meanwhile, and a reader never
	// sees a half-written file.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".jwt.secret-*")
	if err != nil {
		return nil, fmt.Errorf("httpapi: create jwt secret: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("httpapi: chmod jwt secret: %w", err)
	}
	if _, err := tmp.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("httpapi: write jwt secret: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("httpapi: sync jwt secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("httpapi: close jwt secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readSecret(path, log)
		}
		return nil, fmt.Errorf("httpapi: install jwt secret %s: %w", path, err)
	}
	log.Info("generated a development JWT secret (set JWT_SECRET in production)", "path", path)
	return key, nil
}

func readSecret(path string, log *slog.Logger) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("httpapi: jwt secret %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		log.Warn("jwt secret file is readable by others; chmod 600 it", "path", path, "mode", fi.Mode().Perm().String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("httpapi: read jwt secret %s: %w", path, err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < auth.MinSecretBytes {
		return nil, fmt.Errorf("httpapi: jwt secret %s: want at least %d hex-encoded bytes (delete the file to generate a new one)", path, auth.MinSecretBytes)
	}
	return key, nil
}
