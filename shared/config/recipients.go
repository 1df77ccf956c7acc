package config

import (
	"slices"

	"github.com/insightops/insightops/shared/backupcrypt"
)

// ageRoles are the roles that read BACKUP_AGE_RECIPIENTS (they make
// archives: the backup workers, the restore worker's safety backup) and
// BACKUP_AGE_IDENTITY_FILE (they verify or restore archives). The other
// processes ignore both, so a shared configuration can name an identity
// file that only the backup and restore pods mount.
var ageRoles = []Role{RoleAllInOne, RoleBackup, RoleRestore}

// usesAge reports whether processes of role r read the age settings.
func (r Role) usesAge() bool {
	if r == "" {
		r = RoleAllInOne
	}
	return slices.Contains(ageRoles, r)
}

// backupAge reads BACKUP_AGE_RECIPIENTS and BACKUP_AGE_IDENTITY_FILE and
// refuses a configured key that cannot be used (backupcrypt): a malformed
// recipient, an identity file that is missing, unreadable, open to its
// group or others, or holds no identity. Never silent plaintext.
func (p *parser) backupAge(c *Config) {
	if !c.Role.usesAge() {
		return
	}
	c.BackupAgeRecipients = p.str("BACKUP_AGE_RECIPIENTS", "")
	c.BackupAgeIdentityFile = p.str("BACKUP_AGE_IDENTITY_FILE", "")
	if _, err := backupcrypt.ParseRecipients(c.BackupAgeRecipients); err != nil {
		p.add(&VarError{Var: "BACKUP_AGE_RECIPIENTS", Err: err})
	}
	if _, err := backupcrypt.LoadIdentities(c.BackupAgeIdentityFile); err != nil {
		p.add(&VarError{Var: "BACKUP_AGE_IDENTITY_FILE", Err: err})
	}
}
