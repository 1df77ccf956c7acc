package store_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

// idKinds are the tables whose ids name a row in audit events: each
// creates a row (n makes it unique) and deletes one by id.
var idKinds = []struct {
	name   string
	create func(t *testing.T, db *store.DB, n int) int64
	delete func(t *testing.T, db *store.DB, id int64)
}{
	{"users",
		func(t *testing.T, db *store.DB, n int) int64 {
			t.Helper()
			u, err := db.CreateUser(ctxT(t), store.NewUser{Email: fmt.Sprintf("u%d@example.com", n), PasswordHash: "h", Role: store.RoleViewer})
			if err != nil {
				t.Fatal(err)
			}
			return u.ID
		},
		func(t *testing.T, db *store.DB, id int64) {
			t.Helper()
			if _, err := db.DeleteUser(ctxT(t), id); err != nil {
				t.Fatal(err)
			}
		}},
	{"service_tokens",
		func(t *testing.T, db *store.DB, n int) int64 {
			t.Helper()
			st, err := db.CreateServiceToken(ctxT(t), store.ServiceToken{Name: fmt.Sprintf("t%d", n), TokenHash: fmt.Sprintf("hash%d", n),
				Role: store.RoleViewer, CreatedBy: "test", ExpiresAt: time.Now().Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			return st.ID
		},
		func(t *testing.T, db *store.DB, id int64) {
			t.Helper()
			if _, err := db.DeleteServiceToken(ctxT(t), id); err != nil {
				t.Fatal(err)
			}
		}},
}

// TestIDsAreNeverReusedAfterADelete: deleting the newest rows, down to an
// empty table, does not hand their ids out again, on both dialects (SQLite
// needs AUTOINCREMENT for it, migration 00003).
func TestIDsAreNeverReusedAfterADelete(t *testing.T) {
	t.Parallel()
	for _, d := range testkit.Dialects {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			db := d.SystemDB(t)
			for _, k := range idKinds {
				t.Run(k.name, func(t *testing.T) {
					first, second := k.create(t, db, 1), k.create(t, db, 2)
					k.delete(t, db, second)
					k.delete(t, db, first) // the table is empty again
					if third := k.create(t, db, 3); third <= second {
						t.Fatalf("%s: id %d after deleting %d and %d; want a new id above %d", k.name, third, first, second, second)
					}
				})
			}
		})
	}
}

// TestMigration3KeepsRowsAndIDs migrates a System DB holding users, their
// queries and feedback, and service tokens from version 2 to 3: every row
// keeps its id and values, the user references survive (the rebuild of
// users must not null them), and new ids continue above the old ones
// and are never reused. (An id deleted above the surviving maximum before
// the migration ran is not known to it: SQLite may hand it out once more.)
func TestMigration3KeepsRowsAndIDs(t *testing.T) {
	t.Parallel()
	for _, d := range testkit.Dialects {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			db := testkit.OpenSystemDB(t, testkit.Config(t, map[string]string{"DATABASE_URL": d.DatabaseURL(t)}))
			if res, err := db.MigrateTo(ctx, 2); err != nil || res.Version != 2 {
				t.Fatalf("migrate to 2: %+v %v", res, err)
			}

			// Rows under schema 2, one user inactive.
			var users, tokens []int64
			for n := range 3 {
				users = append(users, idKinds[0].create(t, db, n))
				tokens = append(tokens, idKinds[1].create(t, db, n))
			}
			if _, err := db.UpdateUser(ctx, users[1], store.UserPatch{Active: new(false)}); err != nil {
				t.Fatal(err)
			}
			var qid int64
			if err := db.SQL.QueryRowContext(ctx, db.Rebind(`INSERT INTO queries (user_id, question) VALUES (?, ?) RETURNING id`), users[0], "revenue?").Scan(&qid); err != nil {
				t.Fatal(err)
			}
			if _, err := db.SQL.ExecContext(ctx, db.Rebind(`INSERT INTO feedback (query_id, user_id, rating) VALUES (?, ?, 1)`), qid, users[2]); err != nil {
				t.Fatal(err)
			}
			usersBefore, err := db.ListUsers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tokensBefore, err := db.ListServiceTokens(ctx)
			if err != nil {
				t.Fatal(err)
			}

			res, err := db.Migrate(ctx)
			if err != nil || !slices.Equal(res.Applied, []int64{3}) || res.Version != 3 {
				t.Fatalf("migrate 2 → 3: %+v %v; want Applied [3] Version 3", res, err)
			}
			if got, err := db.ListUsers(ctx); err != nil || !reflect.DeepEqual(got, usersBefore) {
				t.Fatalf("users after the migration:\n%+v (%v)\nwant\n%+v", got, err, usersBefore)
			}
			if got, err := db.ListServiceTokens(ctx); err != nil || !reflect.DeepEqual(got, tokensBefore) {
				t.Fatalf("service tokens after the migration:\n%+v (%v)\nwant\n%+v", got, err, tokensBefore)
			}
			var qUser, fUser int64
			if err := db.SQL.QueryRowContext(ctx, db.Rebind(`SELECT q.user_id, f.user_id FROM queries q JOIN feedback f ON f.query_id = q.id WHERE q.id = ?`), qid).Scan(&qUser, &fUser); err != nil {
				t.Fatalf("query and feedback after the migration: %v", err)
			}
			if qUser != users[0] || fUser != users[2] {
				t.Fatalf("user references after the migration: query %d feedback %d; want %d %d", qUser, fUser, users[0], users[2])
			}

			// New ids continue above the old ones and are not handed out
			// again once deleted; foreign keys are enforced again.
			for i, old := range [][]int64{users, tokens} {
				k := idKinds[i]
				id := k.create(t, db, 10)
				k.delete(t, db, id)
				if again := k.create(t, db, 11); id <= old[len(old)-1] || again <= id {
					t.Errorf("%s: new id %d, after deleting it %d; want above %d, then above %d", k.name, id, again, old[len(old)-1], id)
				}
			}
			_, err = db.SQL.ExecContext(ctx, db.Rebind(`INSERT INTO queries (user_id, question) VALUES (?, ?)`), users[2]+1000, "from no user")
			wantConstraint(t, err, constraintForeignKey, "a query of a missing user accepted after the migration; want a foreign key violation")
			if d.Name == string(store.SQLite) {
				for _, table := range []string{"users", "service_tokens"} {
					var ddl string
					if err := db.SQL.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?`, table).Scan(&ddl); err != nil {
						t.Fatal(err)
					}
					if !strings.Contains(ddl, "AUTOINCREMENT") || !strings.Contains(ddl, "STRICT") {
						t.Errorf("%s after the migration: %s; want a STRICT table with AUTOINCREMENT", table, ddl)
					}
				}
			}
		})
	}
}

// TestFailedSQLiteMigration3ChangesNothing: when the rebuild's foreign key
// check fails (a query naming a missing user, written with foreign keys
// off), the migration fails, the System DB stays at version 2 with its
// tables as they were, and the service's pool still works with foreign
// keys on (the half-done transaction died with the migration's own pool).
// Once the bad row is gone the migration succeeds.
func TestFailedSQLiteMigration3ChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := testkit.OpenSystemDB(t, testkit.Config(t, nil))
	if _, err := db.MigrateTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	u := idKinds[0].create(t, db, 1)
	conn, err := db.SQL.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`PRAGMA foreign_keys = OFF`, `INSERT INTO queries (user_id, question) VALUES (999, 'orphan')`, `PRAGMA foreign_keys = ON`} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_ = conn.Close()

	if _, err := db.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "CHECK constraint failed") {
		t.Fatalf("migrate with a broken foreign key: %v; want the foreign key check to fail it", err)
	}
	if v, pending, err := db.SchemaVersion(ctx); err != nil || v != 2 || !pending {
		t.Fatalf("after the failed migration: version %d pending %v err %v; want 2 true nil", v, pending, err)
	}
	var tables []string
	rows, err := db.SQL.QueryContext(ctx, `SELECT name || ':' || (sql LIKE '%AUTOINCREMENT%') FROM sqlite_schema WHERE type = 'table' AND name IN ('users', 'users_new', 'service_tokens', 'service_tokens_new') ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"service_tokens:0", "users:0"}; !slices.Equal(tables, want) {
		t.Fatalf("tables after the failed migration: %v; want %v (unchanged)", tables, want)
	}
	// Every pooled connection still enforces foreign keys and writes.
	for range 4 {
		_, err := db.SQL.ExecContext(ctx, `INSERT INTO queries (user_id, question) VALUES (998, 'orphan')`)
		wantConstraint(t, err, constraintForeignKey, "the pool accepted a query of a missing user after the failed migration")
	}
	if _, err := db.SQL.ExecContext(ctx, `DELETE FROM queries WHERE user_id = 999`); err != nil {
		t.Fatal(err)
	}
	if res, err := db.Migrate(ctx); err != nil || !slices.Equal(res.Applied, []int64{3}) {
		t.Fatalf("migrate once the orphan is gone: %+v %v", res, err)
	}
	if got, err := db.UserByID(ctx, u); err != nil || got.ID != u {
		t.Fatalf("user %d after the migration: %+v %v", u, got, err)
	}
}
