package complevel

import "testing"

func TestRangesAndChecksPerCompression(t *testing.T) {
	for _, tc := range []struct {
		compression string
		level       int
		wantErr     string
	}{
		{"gzip", 1, ""},
		{"gzip", 9, ""},
		{"gzip", 0, "gzip level 0: accepted values: 1 to 9"},
		{"gzip", 10, "gzip level 10: accepted values: 1 to 9"},
		{"zstd", 1, ""},
		{"zstd", 22, ""},
		{"zstd", 23, "zstd level 23: accepted values: 1 to 22"},
		{"zstd", -1, "zstd level -1: accepted values: 1 to 22"},
		{"lz4", 1, `compression "lz4": accepted values: gzip, zstd`},
	} {
		err := Check(tc.compression, tc.level)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
			t.Errorf("Check(%s, %d) = %v, want %q", tc.compression, tc.level, err, tc.wantErr)
		}
	}
	for c, want := range map[string]int{"gzip": 5, "zstd": 1} {
		r, err := Of(c)
		if err != nil || r.Default != want || Check(c, r.Default) != nil {
			t.Errorf("Of(%s) = %+v, %v; want default %d within the range", c, r, err, want)
		}
	}
}
