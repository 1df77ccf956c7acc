package archivesig

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/insightops/insightops/shared/keyfile"
)

// DevKeyFile is the name, under DATA_DIR, of the signing key a development
// deployment generates on first start when BACKUP_SIGNING_KEY is unset.
const DevKeyFile = "backup-signing.key"

// ErrKeyRequired: production without BACKUP_SIGNING_KEY.
var ErrKeyRequired = errors.New("BACKUP_SIGNING_KEY is required in production: set it to a random key (`openssl rand -base64 32`) shared by the backup and restore workers")

// Settings are the configuration a Keyring is loaded from
// (config.Config.Signing returns them).
type Settings struct {
	// Key is BACKUP_SIGNING_KEY, OldKeys BACKUP_SIGNING_KEYS_OLD.
	Key, OldKeys string
	// DataDir is where the development key is kept.
	DataDir string
	// Production refuses to run without Key.
	Production bool
}

// Load returns the keyring of s: Key signs and verifies, OldKeys only
// verify. Without Key, production is ErrKeyRequired and development uses
// (creating it with 32 random bytes on first start, mode 0600)
// DATA_DIR/backup-signing.key; generated reports that it was created now.
func Load(s Settings) (k *Keyring, generated bool, err error) {
	old, err := ParseKeys(s.OldKeys)
	if err != nil {
		return nil, false, fmt.Errorf("BACKUP_SIGNING_KEYS_OLD: %w", err)
	}
	var cur Key
	switch {
	case s.Key != "":
		if cur, err = ParseKey(s.Key); err != nil {
			return nil, false, fmt.Errorf("BACKUP_SIGNING_KEY: %w", err)
		}
	case s.Production:
		return nil, false, ErrKeyRequired
	default:
		dir := s.DataDir
		if dir == "" {
			dir = "."
		}
		b, created, err := keyfile.LoadOrCreate(filepath.Join(dir, DevKeyFile), MinKeyBytes)
		if err != nil {
			return nil, false, fmt.Errorf("development backup signing key: %w", err)
		}
		if cur, err = ParseKey(hex.EncodeToString(b)); err != nil {
			return nil, false, fmt.Errorf("development backup signing key %s: %w (delete it to generate a new one)", filepath.Join(dir, DevKeyFile), err)
		}
		generated = created
	}
	return NewKeyring(&cur, old...), generated, nil
}
