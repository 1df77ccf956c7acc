package config

import (
	"slices"
	"sort"
)

// Role is the kind of process a configuration is loaded for. Each role
// requires, and receives, only the secrets it uses: a compromised worker
// holds no key that signs API tokens and no admin password.
type Role string

// The roles of the binaries.
const (
	// RoleAllInOne is the all-in-one binary (and Load): every secret.
	RoleAllInOne Role = "all-in-one"
	RoleAPI      Role = "api"
	RoleInit     Role = "init"
	RoleBackup   Role = "backup"
	RoleRestore  Role = "restore"
	RoleChroma   Role = "chroma"
)

// Roles lists every role, the all-in-one first.
var Roles = []Role{RoleAllInOne, RoleAPI, RoleInit, RoleBackup, RoleRestore, RoleChroma}

// roleSecrets maps each secret that belongs to some roles only to those
// roles. The secrets every process needs to reach its stores (NATS_URL's
// password, DATABASE_URL) are not listed: they are per-deployment, and the
// NATS user in NATS_URL is per role already (deploy/nats). The archive
// keys and the S3 credentials are held by the processes that open the
// backup store: the backup and restore workers, and the API (imports,
// signature status, downloads); archivesig.Load requires
// BACKUP_SIGNING_KEY in production where it is used.
var roleSecrets = map[string][]Role{
	"JWT_SECRET":              {RoleAllInOne, RoleAPI},
	"INIT_ADMIN_PASSWORD":     {RoleAllInOne, RoleInit},
	"BACKUP_SIGNING_KEY":      storeRoles,
	"BACKUP_SIGNING_KEYS_OLD": storeRoles,
	"AWS_SECRET_ACCESS_KEY":   storeRoles,
	"AWS_SESSION_TOKEN":       storeRoles,
}

// storeRoles are the roles whose processes open the backup store (the
// API lists, downloads and imports archives; the workers write, verify and
// restore them): they hold the archive keys and the S3 credentials.
var storeRoles = []Role{RoleAllInOne, RoleAPI, RoleBackup, RoleRestore}

// UsesBackupStore reports whether processes of role r open the backup
// store (BACKUP_STORE and its settings); init and the chroma workers do
// not, so they neither need nor validate the store's settings.
func (r Role) UsesBackupStore() bool {
	if r == "" {
		r = RoleAllInOne
	}
	return slices.Contains(storeRoles, r)
}

// requiredSecrets are the role-scoped secrets LoadRole requires, in
// production, of every role that holds them.
var requiredSecrets = []string{"JWT_SECRET", "INIT_ADMIN_PASSWORD"}

// RequiredInProduction reports whether LoadRole refuses, in production, a
// configuration of role r without the role-scoped secret name.
func (r Role) RequiredInProduction(name string) bool {
	_, scoped := roleSecrets[name]
	return scoped && r.Holds(name) && slices.Contains(requiredSecrets, name)
}

// RoleScopedSecrets returns the names of the secrets that only some roles
// hold (JWT_SECRET: the API; INIT_ADMIN_PASSWORD: init; the archive keys
// and S3 credentials: API, backup, restore), sorted.
func RoleScopedSecrets() []string {
	out := make([]string, 0, len(roleSecrets))
	for k := range roleSecrets {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Holds reports whether processes of role r use the role-scoped secret
// name. A variable that is not role-scoped is held by every role; the
// zero Role (a Config not made by LoadRole) is the all-in-one.
func (r Role) Holds(name string) bool {
	if r == "" {
		r = RoleAllInOne
	}
	roles, scoped := roleSecrets[name]
	return !scoped || slices.Contains(roles, r)
}
