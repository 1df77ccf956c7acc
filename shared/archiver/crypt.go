package archiver

import (
	"fmt"

	"github.com/insightops/insightops/shared/backupcrypt"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
)

// Recipients are the age public keys new archives are encrypted to
// (BACKUP_AGE_RECIPIENTS), nil when archives are not encrypted. A
// malformed key is the permanent invalid_config (config.Load refuses it
// at start already): never an archive in plaintext instead.
func Recipients(cfg config.Config) (*backupcrypt.Recipients, error) {
	r, err := backupcrypt.ParseRecipients(cfg.BackupAgeRecipients)
	if err != nil {
		return nil, jobs.Permanent(jobs.CodeInvalidConfig, fmt.Errorf("BACKUP_AGE_RECIPIENTS: %w", err))
	}
	return r, nil
}

// Identities are the age identities that decrypt archives
// (BACKUP_AGE_IDENTITY_FILE), read again at every call so that a rotated
// file is used without a restart; nil when none is configured. A file
// that became unusable since the start is the permanent invalid_config.
func Identities(cfg config.Config) (*backupcrypt.Identities, error) {
	ids, err := backupcrypt.LoadIdentities(cfg.BackupAgeIdentityFile)
	if err != nil {
		return nil, jobs.Permanent(jobs.CodeInvalidConfig, fmt.Errorf("BACKUP_AGE_IDENTITY_FILE: %w", err))
	}
	return ids, nil
}

// encryptionName names the encryption of new archives for traces.
func encryptionName(r *backupcrypt.Recipients) string {
	if r == nil {
		return "none"
	}
	return backupcrypt.Method
}
