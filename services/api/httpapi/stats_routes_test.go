package httpapi

import (
	"net/http"
	"slices"
	"testing"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/store"
)

func TestDBStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.do(req{method: http.MethodGet, path: "/admin/db/stats", token: e.token(auth.Viewer)})
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.body)
	}
	st := decode[DBStats](t, res)
	if st.Database != e.db.Describe() {
		t.Errorf("database %q, want %q", st.Database, e.db.Describe())
	}
	var names []string
	var rows, bytes int64
	for _, tb := range st.Tables {
		names = append(names, tb.Name)
		rows += tb.Rows
		bytes += tb.Bytes
		if tb.Bytes <= 0 {
			t.Errorf("table %s: %d bytes", tb.Name, tb.Bytes)
		}
	}
	if want := store.TableNames(); len(names) != 9 || !slices.Equal(names, want) {
		t.Errorf("tables %v, want the 9 system tables %v", names, want)
	}
	if i := slices.Index(names, "users"); i < 0 || st.Tables[i].Rows != int64(len(testUsers)) {
		t.Errorf("users row count: %+v", st.Tables)
	}
	if st.TotalRows != rows || st.TotalBytes != bytes || rows < 3 {
		t.Errorf("totals %d/%d, want %d/%d", st.TotalRows, st.TotalBytes, rows, bytes)
	}
	if res := e.do(req{method: http.MethodGet, path: "/admin/db/stats"}); res.status != http.StatusUnauthorized || codeOf(t, res) != CodeUnauthorized {
		t.Errorf("anonymous: %d (want CodeUnauthorized; body %s)", res.status, res.body)
	}
}
