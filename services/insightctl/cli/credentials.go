package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Environment variables that override the saved login (for scripts).
const (
	EnvURL   = "INSIGHTOPS_URL"
	EnvToken = "INSIGHTOPS_TOKEN"
)

// DefaultURL is the API a fresh `make run` listens on.
const DefaultURL = "http://127.0.0.1:8000"

// credentialsFile is the saved login's file name in the config directory.
const credentialsFile = "credentials.json"

// credentials is what `insightctl login` saves: the API and a token for it.
type credentials struct {
	URL       string     `json:"url"`
	Token     string     `json:"token"`
	Subject   string     `json:"subject,omitempty"`
	Role      string     `json:"role,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// configDir is where the saved login lives: IO.ConfigDir, else
// os.UserConfigDir()/insightops.
func (e *env) configDir() (string, error) {
	if e.io.ConfigDir != "" {
		return e.io.ConfigDir, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user config directory: %w", err)
	}
	return filepath.Join(d, "insightops"), nil
}

// loadCredentials reads the saved login; none saved is the zero value.
func (e *env) loadCredentials() (credentials, error) {
	dir, err := e.configDir()
	if err != nil {
		return credentials{}, err
	}
	b, err := os.ReadFile(filepath.Join(dir, credentialsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return credentials{}, nil
	}
	if err != nil {
		return credentials{}, fmt.Errorf("read the saved login: %w", err)
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return credentials{}, fmt.Errorf("read the saved login %s: %w", filepath.Join(dir, credentialsFile), err)
	}
	return c, nil
}

// saveCredentials writes the login with mode 0600 in a 0700 directory,
// through a temporary file renamed over the old one.
func (e *env) saveCredentials(c credentials) (string, error) {
	dir, err := e.configDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode the login: %w", err)
	}
	f, err := os.CreateTemp(dir, ".credentials-*")
	if err != nil {
		return "", fmt.Errorf("save the login: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }() // gone after the rename
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("save the login: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("save the login: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("save the login: %w", err)
	}
	path := filepath.Join(dir, credentialsFile)
	if err := os.Rename(f.Name(), path); err != nil {
		return "", fmt.Errorf("save the login: %w", err)
	}
	return path, nil
}

// removeCredentials deletes the saved login; none saved is not an error.
func (e *env) removeCredentials() error {
	dir, err := e.configDir()
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, credentialsFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the saved login: %w", err)
	}
	return nil
}
