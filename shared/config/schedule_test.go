package config

import (
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestScheduleAcceptsTheDocumentedForms: each accepted form parses and
// its next tick after a fixed instant is the one the form means.
func TestScheduleAcceptsTheDocumentedForms(t *testing.T) {
	from := utc("2025-03-14T10:17:42Z") // a Friday
	for _, tc := range []struct {
		spec, next string
	}{
		{"0 2 * * *", "2025-03-15T02:00:00Z"},
		{"*/15 * * * *", "2025-03-14T10:30:00Z"},
		{"30 4 1 * *", "2025-04-01T04:30:00Z"},
		{"0 0 * * MON", "2025-03-17T00:00:00Z"},
		{"  0   2 *  * * ", "2025-03-15T02:00:00Z"},
		{"*/10 * * * * *", "2025-03-14T10:17:50Z"},
		{"0 0 3 * * *", "2025-03-15T03:00:00Z"},
		{"@hourly", "2025-03-14T11:00:00Z"},
		{"@daily", "2025-03-15T00:00:00Z"},
		{"@midnight", "2025-03-15T00:00:00Z"},
		{"@weekly", "2025-03-16T00:00:00Z"},
		{"@monthly", "2025-04-01T00:00:00Z"},
		{"@yearly", "2026-01-01T00:00:00Z"},
		{"@annually", "2026-01-01T00:00:00Z"},
		{"@every 1h", "2025-03-14T11:00:00Z"},
		{"@every 2s", "2025-03-14T10:17:44Z"},
		{"@every 90s", "2025-03-14T10:18:00Z"}, // multiples of 90 s since the epoch
		{"CRON_TZ=Europe/Berlin 0 2 * * *", "2025-03-15T01:00:00Z"},
		{"TZ=America/New_York 0 2 * * *", "2025-03-15T06:00:00Z"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := ParseSchedule(tc.spec)
			if err != nil {
				t.Fatalf("ParseSchedule(%q): %v", tc.spec, err)
			}
			if got := s.Next(from); !got.Equal(utc(tc.next)) {
				t.Errorf("Next(%s) = %s, want %s", from.Format(time.RFC3339), got.Format(time.RFC3339), tc.next)
			}
			if got := s.Next(from); got.Location() != time.UTC {
				t.Errorf("Next is in %s, want UTC", got.Location())
			}
			if s.IsZero() || s.String() != strings.Join(strings.Fields(tc.spec), " ") {
				t.Errorf("IsZero %v, String %q", s.IsZero(), s.String())
			}
		})
	}
}

// TestScheduleRefusesInvalidFormsWithTheReason: each invalid form is an
// error saying what is wrong.
func TestScheduleRefusesInvalidFormsWithTheReason(t *testing.T) {
	for _, tc := range []struct {
		spec, want string
	}{
		{"", "empty schedule"},
		{"   ", "empty schedule"},
		{"* * *", "expected 5 to 6 fields, found 3"},
		{"* * * * * * *", "expected 5 to 6 fields, found 7"},
		{"61 * * * *", "end of range (61) above maximum (59)"},
		{"0 25 * * *", "end of range (25) above maximum (23)"},
		{"0 0 * * FUNDAY", "failed to parse int from FUNDAY"},
		{"@fortnightly", "unrecognized descriptor: @fortnightly"},
		{"@every", "unrecognized descriptor: @every"},
		{"@every soon", `@every: time: invalid duration "soon"`},
		{"@every 0s", "must be a whole number of seconds, at least 1s"},
		{"@every -1h", "must be a whole number of seconds, at least 1s"},
		{"@every 1500ms", "must be a whole number of seconds, at least 1s"},
		{"CRON_TZ=Mars/Olympus_Mons 0 2 * * *", "provided bad location Mars/Olympus_Mons"},
		{"CRON_TZ=UTC", "CRON_TZ=UTC is not followed by a schedule"},
		{"0 0 30 2 *", "never fires"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := ParseSchedule(tc.spec)
			if err == nil {
				t.Fatalf("ParseSchedule(%q) accepted it: %q", tc.spec, s)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestBackupScheduleConfigErrorNamesTheVariable: a bad BACKUP_SCHEDULE
// stops Load with the variable, the value, the reason and the accepted
// forms; an empty one is no schedule; BACKUP_VERIFY_AFTER is a boolean.
func TestBackupScheduleConfigErrorNamesTheVariable(t *testing.T) {
	_, err := Load(env(map[string]string{"BACKUP_SCHEDULE": "every night"}))
	if err == nil {
		t.Fatal("an invalid BACKUP_SCHEDULE was accepted")
	}
	for _, want := range []string{`BACKUP_SCHEDULE="every night"`, "expected 5 to 6 fields, found 2", "accepted values: 5 cron fields", "@every"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	c, err := Load(env(nil))
	if err != nil || !c.BackupSchedule.IsZero() || c.BackupVerifyAfter {
		t.Fatalf("defaults: schedule %q verify-after %v, %v", c.BackupSchedule, c.BackupVerifyAfter, err)
	}
	c, err = Load(env(map[string]string{"BACKUP_SCHEDULE": "@daily", "BACKUP_VERIFY_AFTER": "true"}))
	if err != nil || c.BackupSchedule.String() != "@daily" || !c.BackupVerifyAfter {
		t.Fatalf("schedule %q verify-after %v, %v", c.BackupSchedule, c.BackupVerifyAfter, err)
	}
	if _, err := Load(env(map[string]string{"BACKUP_VERIFY_AFTER": "sometimes"})); err == nil || !strings.Contains(err.Error(), `BACKUP_VERIFY_AFTER="sometimes": accepted values: true, false`) {
		t.Errorf("BACKUP_VERIFY_AFTER=sometimes: %v", err)
	}
}

// TestSchedulePrevAndNextBracketEveryInstant: for instants on and between
// ticks, Prev(t) ≤ t < Next(t), Next(Prev(t)) is the tick after, and a
// tick is its own Prev — what the scheduler relies on to fire each tick
// once and to find the one missed tick it may catch up.
func TestSchedulePrevAndNextBracketEveryInstant(t *testing.T) {
	for _, tc := range []struct {
		spec      string
		at        string
		prev, nxt string
	}{
		{"@every 2s", "2025-03-14T10:17:43Z", "2025-03-14T10:17:42Z", "2025-03-14T10:17:44Z"},
		{"@every 2s", "2025-03-14T10:17:42Z", "2025-03-14T10:17:42Z", "2025-03-14T10:17:44Z"},
		{"@every 24h", "2025-03-14T10:17:43Z", "2025-03-14T00:00:00Z", "2025-03-15T00:00:00Z"},
		{"0 2 * * *", "2025-03-14T10:17:43Z", "2025-03-14T02:00:00Z", "2025-03-15T02:00:00Z"},
		{"0 2 * * *", "2025-03-14T02:00:00Z", "2025-03-14T02:00:00Z", "2025-03-15T02:00:00Z"},
		{"0 0 1 1 *", "2025-03-14T10:17:43Z", "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"},
		{"*/5 * * * * *", "2025-03-14T10:17:43.9Z", "2025-03-14T10:17:40Z", "2025-03-14T10:17:45Z"},
		{"0 0 29 2 *", "2025-03-14T10:17:43Z", "2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z"},
	} {
		t.Run(tc.spec+"@"+tc.at, func(t *testing.T) {
			s, err := ParseSchedule(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			at, err := time.Parse(time.RFC3339Nano, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Prev(at); !got.Equal(utc(tc.prev)) {
				t.Errorf("Prev = %s, want %s", got, tc.prev)
			}
			if got := s.Next(at); !got.Equal(utc(tc.nxt)) {
				t.Errorf("Next = %s, want %s", got, tc.nxt)
			}
			if got := s.Next(s.Prev(at)); !got.Equal(utc(tc.nxt)) {
				t.Errorf("Next(Prev) = %s, want %s", got, tc.nxt)
			}
		})
	}
	var zero Schedule
	if !zero.IsZero() || !zero.Next(time.Now()).IsZero() || !zero.Prev(time.Now()).IsZero() {
		t.Error("the zero schedule has ticks")
	}
}
