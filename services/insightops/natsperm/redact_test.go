package natsperm

import (
	"strings"
	"testing"

	"github.com/insightops/insightops/shared/config"
)

// TestNATSURLPasswordsAreRedactedInMessages checks that the credentials a
// service's NATS_URL carries never reach a log line or error through
// config.RedactURLs (used by bus.Connect's error).
func TestNATSURLPasswordsAreRedactedInMessages(t *testing.T) {
	cases := []struct{ in, want string }{
		{"nats://api:s3cret@nats-1:4222", "nats://api:xxxxx@nats-1:4222"},
		{"nats://api:s3cret@nats-1:4222,nats://api:s3cret@nats-2:4222", "nats://api:xxxxx@nats-1:4222,nats://api:xxxxx@nats-2:4222"},
		{"nats://nats-1:4222", "nats://nats-1:4222"},
		{"nats://s3cret@nats-1:4222", "nats://xxxxx@nats-1:4222"},
	}
	for _, c := range cases {
		got := config.RedactURLs(c.in)
		if got != c.want || strings.Contains(got, "s3cret") {
			t.Errorf("RedactURLs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
