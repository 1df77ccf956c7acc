package audit_test

import (
	"strings"
	"testing"

	"github.com/insightops/insightops/shared/audit"
)

// TestDerivedID: the same parts give the same id; different parts — even
// ones that concatenate to the same text — give different ids; the id is
// not a ULID (it starts with "ev-").
func TestDerivedID(t *testing.T) {
	a := audit.DerivedID("job", "lock_wait", "system")
	for _, c := range []struct {
		name  string
		other string
		same  bool
	}{
		{"same parts", audit.DerivedID("job", "lock_wait", "system"), true},
		{"another lock", audit.DerivedID("job", "lock_wait", "target"), false},
		{"parts shifted", audit.DerivedID("jo", "block_wait", "system"), false},
		{"parts joined", audit.DerivedID("joblock_waitsystem"), false},
	} {
		if (a == c.other) != c.same {
			t.Errorf("%s: %s vs %s, want same=%v", c.name, a, c.other, c.same)
		}
	}
	if !strings.HasPrefix(a, "ev-") || len(a) != 35 {
		t.Errorf("id %q", a)
	}
}

// TestSubjectFollowsTheContract: audit.<resource>.<action>, without
// repeating a resource the action starts with.
func TestSubjectFollowsTheContract(t *testing.T) {
	for _, c := range []struct{ resource, action, want string }{
		{"backup", "backup.requested", "audit.backup.requested"},
		{"system", "backup.lock_wait", "audit.system.backup.lock_wait"},
		{"chroma", "chroma.train.lock_wait", "audit.chroma.train.lock_wait"},
		{"config", "config.invalid", "audit.config.invalid"},
	} {
		if got := (audit.Event{Resource: c.resource, Action: c.action}).Subject(); got != c.want {
			t.Errorf("%s/%s: %s, want %s", c.resource, c.action, got, c.want)
		}
	}
}
