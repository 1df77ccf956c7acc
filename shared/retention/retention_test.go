package retention

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobspec"
)

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// history is a fixed set of archives, named by letter, newest first.
var history = []Archive{
	{Name: "a", Created: at("2025-11-27 14:00")}, // Thu, 2025-W48
	{Name: "b", Created: at("2025-11-27 02:00")},
	{Name: "c", Created: at("2025-11-26 02:00")},
	{Name: "d", Created: at("2025-11-24 02:00")}, // Mon, 2025-W48
	{Name: "e", Created: at("2025-11-23 02:00")}, // Sun, 2025-W47
	{Name: "f", Created: at("2025-11-16 02:00")}, // Sun, 2025-W46
	{Name: "g", Created: at("2025-10-31 23:59")}, // the last minute of October
	{Name: "h", Created: at("2025-10-01 00:00")},
	{Name: "i", Created: at("2025-09-15 02:00")},
	{Name: "j", Created: at("2024-12-31 02:00")}, // Tue, ISO week 2025-W01
}

// with returns history with the named archives changed by fn.
func with(fn func(*Archive), names ...string) []Archive {
	out := slices.Clone(history)
	for i := range out {
		if slices.Contains(names, out[i].Name) {
			fn(&out[i])
		}
	}
	return out
}

func kept(ds []Decision) string {
	var s []string
	for _, d := range ds {
		if d.Keep {
			s = append(s, d.Name)
		}
	}
	return strings.Join(s, ",")
}

func TestApplyOnFixedDates(t *testing.T) {
	t.Parallel()
	pin := func(a *Archive) { a.Pinned = true }
	verify := func(a *Archive) { a.Verified = true }
	for _, tc := range []struct {
		name     string
		policy   config.Retention
		archives []Archive
		kept     string
	}{
		{"keep-last 3", config.Retention{Last: 3}, history, "a,b,c"},
		{"daily 3: the newest of each of the last 3 days with an archive", config.Retention{Last: 1, Daily: 3}, history, "a,c,d"},
		{"weekly 3: ISO weeks, Monday to Sunday", config.Retention{Last: 1, Weekly: 3}, history, "a,e,f"},
		{"monthly 3: the last minute of a month is that month's", config.Retention{Last: 1, Monthly: 3}, history, "a,g,i"},
		{"monthly 12 keeps every month that has one", config.Retention{Last: 1, Monthly: 12}, history, "a,g,i,j"},
		{"within 26h of the newest", config.Retention{Last: 1, Within: 26 * time.Hour}, history, "a,b"},
		{"within 37h of the newest", config.Retention{Last: 1, Within: 37 * time.Hour}, history, "a,b,c"},
		{"GFS combined", config.Retention{Last: 2, Daily: 2, Weekly: 2, Monthly: 2}, history, "a,b,c,e,g"},
		{"pinned archives are always kept", config.Retention{Last: 1}, with(pin, "j", "e"), "a,e,j"},
		{"the newest verified archive is kept", config.Retention{Last: 2}, with(verify, "h", "i"), "a,b,h"},
		{"a verified archive among the kept keeps no other", config.Retention{Last: 2}, with(verify, "b", "h"), "a,b"},
		{"order of the input does not matter", config.Retention{Last: 1, Daily: 3}, func() []Archive {
			r := slices.Clone(history)
			slices.Reverse(r)
			return r
		}(), "a,c,d"},
		{"ISO week across the new year", config.Retention{Weekly: 2}, []Archive{
			{Name: "x", Created: at("2025-01-05 02:00")}, // Sun, 2025-W01
			{Name: "j", Created: at("2024-12-31 02:00")}, // Tue, 2025-W01
			{Name: "k", Created: at("2024-12-28 02:00")}, // Sat, 2024-W52
		}, "x,k"},
		{"nothing to decide", config.Retention{Last: 7, Daily: 7}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ds := Apply(tc.policy, tc.archives)
			if got := kept(ds); got != tc.kept {
				t.Fatalf("kept %s, want %s", got, tc.kept)
			}
			if len(ds) != len(tc.archives) {
				t.Fatalf("%d decisions for %d archives", len(ds), len(tc.archives))
			}
			for i := 1; i < len(ds); i++ {
				if ds[i].Created.After(ds[i-1].Created) {
					t.Fatalf("decisions not newest first: %s before %s", ds[i-1].Name, ds[i].Name)
				}
			}
			for _, d := range ds {
				if len(d.Reasons) == 0 {
					t.Fatalf("%s has no reason", d.Name)
				}
			}
		})
	}
}

func TestReasonsNameEveryRule(t *testing.T) {
	t.Parallel()
	ds := Apply(config.Retention{Last: 2, Daily: 2, Weekly: 2, Monthly: 2, Within: time.Hour}, with(func(a *Archive) { a.Pinned = true }, "a"))
	byName := map[string]Decision{}
	for _, d := range ds {
		byName[d.Name] = d
	}
	want := []string{
		jobspec.KeptNewest, "newest of day 2025-11-27 (BACKUP_RETENTION_DAILY)", "newest of week 2025-W48 (BACKUP_RETENTION_WEEKLY)",
		"newest of month 2025-11 (BACKUP_RETENTION_MONTHLY)", "within 1h0m0s of the newest archive (BACKUP_RETENTION_WITHIN)", jobspec.KeptPinned,
	}
	if got := byName["a"].Reasons; !slices.Equal(got, want) {
		t.Fatalf("reasons of a = %q, want %q", got, want)
	}
	if got := byName["e"].Reason(); got != "newest of week 2025-W47 (BACKUP_RETENTION_WEEKLY)" {
		t.Fatalf("reason of e = %q", got)
	}
	if d := byName["f"]; d.Keep || d.Reason() != "no rule keeps it (last 2, daily 2, weekly 2, monthly 2, within 1h0m0s)" {
		t.Fatalf("f = %+v", d)
	}
}
