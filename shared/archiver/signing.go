package archiver

import (
	"fmt"

	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
)

// Seal is the backupstore.Seal of an archive whose bytes must hash to
// archiveSHA256 and whose manifest to manifestSHA256: it signs them with
// keys' signing key, and refuses bytes that hash to anything else (the
// store hashed what it actually wrote).
func Seal(keys *archivesig.Keyring, name, archiveSHA256, manifestSHA256 string) backupstore.Seal {
	return func(sum string) (string, error) {
		if sum != archiveSHA256 {
			return "", fmt.Errorf("the store received bytes with SHA-256 %s, the archive has %s", sum, archiveSHA256)
		}
		sig, err := keys.Sign(name, sum, manifestSHA256)
		if err != nil {
			return "", fmt.Errorf("sign %s: %w", name, err)
		}
		return sig.String(), nil
	}
}

// Keys returns the archive keyring: Options.Keys, else the one the
// configuration gives (archivesig.Load: BACKUP_SIGNING_KEY, or in
// development the key kept in DATA_DIR), loaded on first use. A missing or
// bad key is a permanent invalid_config error.
func (a *Archiver) Keys() (*archivesig.Keyring, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.keys != nil {
		return a.keys, nil
	}
	keys, generated, err := archivesig.Load(a.deps.Config.Signing())
	if err != nil {
		return nil, jobs.Permanent(jobs.CodeInvalidConfig, fmt.Errorf("backup signing key: %w", err))
	}
	if generated {
		a.deps.Log.Info("generated a development backup signing key (set BACKUP_SIGNING_KEY in production)",
			"path", a.deps.Config.DataDir+"/"+archivesig.DevKeyFile, "key_id", keys.KeyID())
	}
	a.keys = keys
	return keys, nil
}
