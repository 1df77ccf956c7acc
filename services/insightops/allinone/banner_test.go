package allinone_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/services/insightops/allinone"
	"github.com/insightops/insightops/services/insightops/allinone/allinonetest"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/testkit"
)

// The banner says the all-in-one runs only once its API listens: when the
// API cannot start (here its address is taken), Run returns the error and
// nothing was printed, so a reader is never told to open a dead address.
func TestNoBannerWhenTheAPIDoesNotStart(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	vars := map[string]string{
		"DATA_DIR": dir, "API_ADDR": taken.Addr().String(), "NATS_LISTEN": "127.0.0.1:0",
		"JOB_ACK_WAIT": "5s", "SHUTDOWN_TIMEOUT": "5s",
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	deps, closeAll, err := app.OpenWith(ctx, cfg, testkit.Logger(t), app.Options{Name: "test-banner", SystemDB: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	banner := &allinonetest.Buffer{}
	err = allinone.Run(ctx, deps, banner)
	if err == nil || !strings.Contains(err.Error(), "listen on "+taken.Addr().String()) {
		t.Fatalf("Run = %v, want the API's listen error", err)
	}
	if banner.String() != "" {
		t.Fatalf("a banner was printed for an all-in-one whose API never started:\n%s", banner.String())
	}
}

// A started all-in-one has printed its banner by the time its API answers.
func TestBannerOnceTheAPIListens(t *testing.T) {
	t.Parallel()
	in := allinonetest.Start(t, allinonetest.Options{})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(in.Banner.String(), "insightops is running") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner 10 s after the API answered: %q", in.Banner.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(in.Banner.String(), in.URL) {
		t.Fatalf("banner does not name the API %s:\n%s", in.URL, in.Banner.String())
	}
}
