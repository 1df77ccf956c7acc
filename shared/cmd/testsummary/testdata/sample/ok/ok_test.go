package ok

import "testing"

func TestPasses(t *testing.T) {}

func TestSkips(t *testing.T) { t.Skip("postgres unavailable: connection refused") }

func TestParent(t *testing.T) {
	t.Run("sub", func(t *testing.T) { t.Skip("zstd not installed") })
	t.Run("other", func(t *testing.T) {})
}
