package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insightops/insightops/shared/backupcrypt/agetest"
)

// ageKeys returns a fresh age identity line and its public key.
func ageKeys(t *testing.T) (identity, recipient string) {
	t.Helper()
	k := agetest.NewKey(t)
	return k.Identity, k.Recipient
}

// writeIdentity writes content into a new file of mode perm.
func writeIdentity(t *testing.T, content string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "identity.txt")
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // umask aside
		t.Fatal(err)
	}
	return p
}

// TestBackupAgeKeysThatCannotBeUsedRefuseToStart: a configured age key
// that cannot be used stops LoadRole with the variable and the reason,
// for every role that reads it; never plaintext archives instead.
func TestBackupAgeKeysThatCannotBeUsedRefuseToStart(t *testing.T) {
	id, pub := ageKeys(t)
	_, pub2 := ageKeys(t)
	good := writeIdentity(t, "# created: now\n# public key: "+pub+"\n"+id+"\n", 0o600)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"malformed recipient", map[string]string{"BACKUP_AGE_RECIPIENTS": pub + ",age1notakey"},
			"BACKUP_AGE_RECIPIENTS: recipient 2 is not an age public key (age1…, from age-keygen)"},
		{"ssh key as recipient", map[string]string{"BACKUP_AGE_RECIPIENTS": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB/VHtZ6Szn3"},
			"BACKUP_AGE_RECIPIENTS: recipient 1 is not an age public key (age1…, from age-keygen)"},
		{"private key as recipient", map[string]string{"BACKUP_AGE_RECIPIENTS": id},
			"BACKUP_AGE_RECIPIENTS: recipient 1 is a private key (AGE-SECRET-KEY-…); give its public key (age-keygen -y) and keep the private key only where archives are verified and restored"},
		{"empty recipient", map[string]string{"BACKUP_AGE_RECIPIENTS": pub + ",,"},
			"BACKUP_AGE_RECIPIENTS: recipient 2 is empty"},
		{"duplicate recipient", map[string]string{"BACKUP_AGE_RECIPIENTS": pub + ", " + pub},
			"BACKUP_AGE_RECIPIENTS: recipient 2 is listed twice"},
		{"missing identity file", map[string]string{"BACKUP_AGE_IDENTITY_FILE": filepath.Join(dir, "nope.txt")},
			"BACKUP_AGE_IDENTITY_FILE: identity file " + filepath.Join(dir, "nope.txt") + " does not exist"},
		{"group-writable identity file", map[string]string{"BACKUP_AGE_IDENTITY_FILE": writeIdentity(t, id+"\n", 0o660)},
			"has mode 0660: its group or others may access it (chmod 600)"},
		{"group-readable identity file of another group", map[string]string{"BACKUP_AGE_IDENTITY_FILE": otherGroup(t, writeIdentity(t, id+"\n", 0o640))},
			": its group or others may access it (chmod 600)"},
		{"world-readable identity file", map[string]string{"BACKUP_AGE_IDENTITY_FILE": writeIdentity(t, id+"\n", 0o604)},
			"has mode 0604: its group or others may access it (chmod 600)"},
		{"identity file without an identity", map[string]string{"BACKUP_AGE_IDENTITY_FILE": writeIdentity(t, "# only a comment\n", 0o600)},
			"holds no usable age identity: no identities found"},
		{"identity file holding a public key", map[string]string{"BACKUP_AGE_IDENTITY_FILE": writeIdentity(t, pub+"\n", 0o600)},
			"holds no usable age identity: error at line 1: unknown identity type"},
		{"identity file is a directory", map[string]string{"BACKUP_AGE_IDENTITY_FILE": dir},
			"BACKUP_AGE_IDENTITY_FILE: identity file " + dir + " is not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, role := range []Role{RoleAllInOne, RoleBackup, RoleRestore} {
				_, err := LoadRole(env(tc.vars), role)
				var ve *VarError
				if err == nil || !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("%s: LoadRole = %v, want a VarError containing %q", role, err, tc.want)
				}
				if strings.Contains(err.Error(), strings.TrimPrefix(id, "AGE-SECRET-KEY-1")) {
					t.Fatalf("%s: the error shows the private key: %v", role, err)
				}
			}
		})
	}

	// Usable keys load; several recipients and identities (rotation).
	id2, pub3 := ageKeys(t)
	both := writeIdentity(t, id+"\n"+id2+"\n", 0o400)
	c, err := LoadRole(env(map[string]string{"BACKUP_AGE_RECIPIENTS": " " + pub + " , " + pub2 + "," + pub3, "BACKUP_AGE_IDENTITY_FILE": both}), RoleBackup)
	if err != nil || c.BackupAgeIdentityFile != both || !strings.Contains(c.BackupAgeRecipients, pub2) {
		t.Fatalf("usable keys: %+v %v", c.BackupAgeRecipients, err)
	}
	if _, err := LoadRole(env(map[string]string{"BACKUP_AGE_IDENTITY_FILE": good}), RoleRestore); err != nil {
		t.Fatal(err)
	}
	// Group read by this process's own group is accepted: Kubernetes
	// mounts a Secret root:fsGroup 0440 under securityContext.fsGroup.
	own := writeIdentity(t, id+"\n", 0o440)
	if err := os.Chown(own, -1, os.Getegid()); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRole(env(map[string]string{"BACKUP_AGE_IDENTITY_FILE": own}), RoleBackup); err != nil {
		t.Fatalf("mode 0440 in the process's own group: %v", err)
	}
}

// otherGroup gives path a group that is not this process's: nogroup
// (65534), or the process's group plus one if that is it. Only root may
// do so; otherwise the file is made world-readable instead, refused alike.
func otherGroup(t *testing.T, path string) string {
	t.Helper()
	gid := 65534
	if gid == os.Getegid() {
		gid++
	}
	if err := os.Chown(path, -1, gid); err != nil {
		t.Logf("chown %s to group %d: %v; the file is made world-readable instead", path, gid, err)
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// TestBackupAgeIgnoredByOtherRoles: the API, init and chroma neither read
// nor check the age settings (a shared configuration may name an
// identity file only the backup and restore pods mount).
func TestBackupAgeIgnoredByOtherRoles(t *testing.T) {
	vars := map[string]string{"BACKUP_AGE_RECIPIENTS": "age1notakey", "BACKUP_AGE_IDENTITY_FILE": filepath.Join(t.TempDir(), "not-mounted.txt")}
	for _, role := range []Role{RoleAPI, RoleInit, RoleChroma} {
		c, err := LoadRole(env(vars), role)
		if err != nil || c.BackupAgeRecipients != "" || c.BackupAgeIdentityFile != "" {
			t.Errorf("%s: %+v %v", role, c.BackupAgeIdentityFile, err)
		}
	}
}
