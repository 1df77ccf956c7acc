package bad

import "testing"

func TestFails(t *testing.T) { t.Error("want 409 lease_held, got 500") }

func TestPasses(t *testing.T) {}
