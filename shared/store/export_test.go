package store

import "context"

// MigrateTo applies the migrations up to version only, for tests that
// check a migration against rows written under an older schema.
func (db *DB) MigrateTo(ctx context.Context, version int64) (MigrateResult, error) {
	return db.migrateTo(ctx, version)
}
