package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// ScheduleForms describes the schedule forms ParseSchedule accepts; config
// errors about BACKUP_SCHEDULE quote it.
const ScheduleForms = `5 cron fields "minute hour day-of-month month day-of-week" (e.g. "0 2 * * *"), ` +
	`6 fields with seconds first (e.g. "*/10 * * * * *"), ` +
	`@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, or @every <whole seconds, e.g. 6h or 90s>; ` +
	`evaluated in UTC unless prefixed "CRON_TZ=<IANA zone> "`

// scheduleParser accepts the standard 5-field form, an optional leading
// seconds field and the descriptors (@daily, @every 1h, …).
var scheduleParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Schedule is a parsed cron schedule (BACKUP_SCHEDULE). Its ticks are
// absolute instants that do not depend on when or where they are
// computed: cron fields are evaluated in UTC (or the CRON_TZ given), and
// @every d ticks at the multiples of d since the Unix epoch, so every
// replica that parses the same spec agrees on every tick. The zero value
// is "no schedule".
type Schedule struct {
	spec  string
	cron  cron.Schedule // nil for @every and for the zero value
	every time.Duration // > 0 for @every
}

// ParseSchedule parses spec (see ScheduleForms). Whitespace between
// fields is normalised, so "0  2 * * *" and "0 2 * * *" are the same
// schedule with the same String.
func ParseSchedule(spec string) (Schedule, error) {
	norm := strings.Join(strings.Fields(spec), " ")
	if norm == "" {
		return Schedule{}, errors.New("empty schedule")
	}
	body := norm
	tz := ""
	if strings.HasPrefix(body, "TZ=") || strings.HasPrefix(body, "CRON_TZ=") {
		// The parser slices up to the first space: without one it panics.
		prefix, rest, ok := strings.Cut(body, " ")
		if !ok {
			return Schedule{}, fmt.Errorf("%s is not followed by a schedule", prefix)
		}
		tz, body = prefix, rest
	}
	if d, ok := strings.CutPrefix(body, "@every "); ok {
		every, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return Schedule{}, fmt.Errorf("@every: %w", err)
		}
		if every < time.Second || every%time.Second != 0 {
			return Schedule{}, fmt.Errorf("@every %s: must be a whole number of seconds, at least 1s", every)
		}
		return Schedule{spec: norm, every: every}, nil
	}
	var full string
	if tz == "" {
		full = "CRON_TZ=UTC " + body // never the process's local zone
	} else {
		full = tz + " " + body
	}
	sched, err := scheduleParser.Parse(full)
	if err != nil {
		return Schedule{}, fmt.Errorf("parse schedule: %w", err)
	}
	s := Schedule{spec: norm, cron: sched}
	if s.Next(time.Now()).IsZero() {
		return Schedule{}, errors.New("the schedule never fires (no matching date in the next five years)")
	}
	return s, nil
}

// IsZero reports whether s is "no schedule".
func (s Schedule) IsZero() bool { return s.cron == nil && s.every == 0 }

// String is the normalised spec ("" for no schedule).
func (s Schedule) String() string { return s.spec }

// Next returns the first tick strictly after t, in UTC; the zero time
// when s is zero or there is none within five years.
func (s Schedule) Next(t time.Time) time.Time {
	switch {
	case s.every > 0:
		return s.Prev(t).Add(s.every)
	case s.cron != nil:
		n := s.cron.Next(t)
		if n.IsZero() {
			return n
		}
		return n.UTC()
	}
	return time.Time{}
}

// Prev returns the last tick at or before t, in UTC; the zero time when s
// is zero or there is none within about five years.
func (s Schedule) Prev(t time.Time) time.Time {
	switch {
	case s.every > 0:
		d := int64(s.every / time.Second)
		sec := t.Unix()
		p := sec - sec%d
		if sec < 0 && sec%d != 0 {
			p -= d
		}
		return time.Unix(p, 0).UTC()
	case s.cron != nil:
		// Look back in doubling windows until one holds a tick, then walk
		// forward to the last tick not after t.
		for back := time.Second; back <= 6*365*24*time.Hour; back *= 2 {
			first := s.cron.Next(t.Add(-back))
			if first.IsZero() {
				return time.Time{}
			}
			if first.After(t) {
				continue
			}
			p := first
			for {
				n := s.cron.Next(p)
				if n.IsZero() || n.After(t) {
					return p.UTC()
				}
				p = n
			}
		}
	}
	return time.Time{}
}
