package backupworker

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/config"
)

func mustSchedule(t *testing.T, spec string) config.Schedule {
	t.Helper()
	s, err := config.ParseSchedule(spec)
	if err != nil {
		t.Fatalf("ParseSchedule(%q): %v", spec, err)
	}
	return s
}

// TestTickKeyIsTheSameOnEveryReplica: replicas that compute the same tick
// from different clocks, zones, spellings of the schedule or monotonic
// readings derive the same idempotency key, so they submit one job.
func TestTickKeyIsTheSameOnEveryReplica(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 3, 14, 10, 17, 43, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		specA      string
		nowA, nowB time.Time
		specB      string
	}{
		{"two replicas a second apart within one period", "@every 2s", base, base.Add(900 * time.Millisecond), "@every 2s"},
		{"one replica's clock in another zone", "0 2 * * *", base, base.In(berlin), "0 2 * * *"},
		{"one replica with a monotonic reading", "*/5 * * * * *", base, time.Now().Add(base.Sub(time.Now())), "*/5 * * * * *"},
		{"the schedule spelled with extra spaces", "0 2 * * *", base, base.Add(3 * time.Hour), " 0  2 * *  * "},
		{"hourly, replicas minutes apart", "@hourly", base, base.Add(40 * time.Minute), "@hourly"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := mustSchedule(t, tc.specA), mustSchedule(t, tc.specB)
			tickA, tickB := a.Next(tc.nowA), b.Next(tc.nowB)
			if !tickA.Equal(tickB) {
				t.Fatalf("the replicas disagree on the tick: %s vs %s", tickA, tickB)
			}
			if ka, kb := TickKey(a, tickA), TickKey(b, tickB); ka != kb {
				t.Errorf("keys differ for the same tick: %q vs %q", ka, kb)
			}
			// The params must be byte-identical too, or the second
			// submission is an idempotency conflict instead of the same job.
			pa, pb := scheduledParams(t, a, tickA), scheduledParams(t, b, tickB)
			if pa != pb {
				t.Errorf("params differ for the same tick:\n%s\n%s", pa, pb)
			}
		})
	}
}

// TestTickKeyDiffersPerTickAndSchedule: consecutive ticks, and the same
// instant under another schedule, get other keys; the key of a given
// schedule and tick does not change between releases (a rolling upgrade
// at a tick must not submit twice).
func TestTickKeyDiffersPerTickAndSchedule(t *testing.T) {
	t.Parallel()
	daily, hourly := mustSchedule(t, "0 2 * * *"), mustSchedule(t, "0 * * * *")
	tick := time.Date(2025, 3, 15, 2, 0, 0, 0, time.UTC)
	keys := map[string]string{}
	for name, k := range map[string]string{
		"daily at the tick":       TickKey(daily, tick),
		"daily at the next tick":  TickKey(daily, daily.Next(tick)),
		"hourly at the same tick": TickKey(hourly, tick),
		"hourly at the next tick": TickKey(hourly, hourly.Next(tick)),
	} {
		if other, dup := keys[k]; dup {
			t.Errorf("%s and %s share the key %q", name, other, k)
		}
		keys[k] = name
	}
	if got, want := TickKey(daily, tick), "schedule-746248f886e0afd6-20250315T020000Z"; got != want {
		t.Errorf("TickKey(%q, %s) = %q, want the stable %q", daily, tick, got, want)
	}
	first, again, other := VerifyAfterKey("01JABC"), VerifyAfterKey("01JABC"), VerifyAfterKey("01JABD")
	if first != again || first == other || first == "" {
		t.Error("VerifyAfterKey is not one key per create job")
	}
}

// scheduledParams is the JSON a scheduler submits for tick.
func scheduledParams(t *testing.T, s config.Schedule, tick time.Time) string {
	t.Helper()
	sch := &Scheduler{sched: s, verifyAfter: true}
	b, err := json.Marshal(sch.params(tick))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSchedulerSubmitsAtMostOneMissedTick: at start the previous tick is
// submitted once (unless older than the catch-up window); after ticks
// were missed (a long outage of the bus while submitting) only the latest
// is submitted; a tick already handled is never submitted again.
func TestSchedulerSubmitsAtMostOneMissedTick(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.TimeOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return time.Date(2025, 3, 14, v.Hour(), v.Minute(), v.Second(), 0, time.UTC)
	}
	zero := time.Time{}
	for _, tc := range []struct {
		name     string
		spec     string
		catchUp  time.Duration
		now      time.Time
		last     time.Time
		wantTick time.Time // zero: nothing to submit
		handled  time.Time
	}{
		{"start after a missed tick: catch it up", "@hourly", 7 * 24 * time.Hour, at("10:30:00"), zero, at("10:00:00"), at("10:00:00")},
		{"start exactly on a tick: submit it", "@hourly", 7 * 24 * time.Hour, at("10:00:00"), zero, at("10:00:00"), at("10:00:00")},
		{"start long after the last tick: too old to catch up", "0 2 * * *", time.Hour, at("10:30:00"), zero, zero, at("02:00:00")},
		{"woken on the next tick", "@every 2s", time.Hour, at("10:00:02"), at("10:00:00"), at("10:00:02"), at("10:00:02")},
		{"woken early: nothing yet", "@every 2s", time.Hour, at("10:00:01"), at("10:00:00"), zero, at("10:00:00")},
		{"three ticks missed while submitting: only the latest", "@hourly", time.Hour, at("13:30:00"), at("10:00:00"), at("13:00:00"), at("13:00:00")},
		{"then nothing until the next tick", "@hourly", time.Hour, at("13:31:00"), at("13:00:00"), zero, at("13:00:00")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Scheduler{sched: mustSchedule(t, tc.spec), catchUp: tc.catchUp}
			tick, handled, ok := s.due(tc.now, tc.last)
			if ok != !tc.wantTick.IsZero() || !tick.Equal(tc.wantTick) || !handled.Equal(tc.handled) {
				t.Errorf("due(%s, last %s) = %s, handled %s, submit %v; want %s, handled %s",
					tc.now.Format(time.TimeOnly), tc.last.Format(time.TimeOnly), tick.Format(time.TimeOnly), handled.Format(time.TimeOnly), ok,
					tc.wantTick.Format(time.TimeOnly), tc.handled.Format(time.TimeOnly))
			}
		})
	}
}
