package natsperm

import (
	"slices"
	"strings"
	"testing"
)

// probe is one subject a role may or may not publish to (or subscribe to).
type probe struct {
	subject string
	sub     bool     // a subscription rather than a publish
	allowed []string // the users that may; every other user must be refused
}

// probes is the permission matrix of deploy/nats/accounts.conf. Every
// user is tried on every row, so a permission added to a user that should
// not have it (or removed from one that needs it) fails a row.
var probes = []probe{
	{subject: "jobs.init.run", allowed: []string{"api"}},
	{subject: "jobs.backup.create", allowed: []string{"api"}},
	{subject: "jobs.backup.prune", allowed: []string{"api"}},
	{subject: "jobs.restore.run", allowed: []string{"api"}},
	{subject: "jobs.chroma.train", allowed: []string{"api", "init", "provisioner"}},
	{subject: "jobs.chroma.clear", allowed: []string{"api"}},
	{subject: "audit.backup.requested", allowed: []string{"api", "backup"}},
	{subject: "audit.restore.applied", allowed: []string{"api", "restore"}},
	{subject: "audit.user.created", allowed: []string{"api", "init", "provisioner"}},
	{subject: "audit.chroma.started", allowed: []string{"api", "chroma"}},
	{subject: "audit.config.warning", allowed: []string{"provisioner", "api", "init", "backup", "restore", "chroma"}},
	{subject: "audit.init.succeeded", allowed: []string{"api", "init", "provisioner"}},
	{subject: "dlq.jobs.backup.create", allowed: []string{"backup"}},
	{subject: "dlq.jobs.restore.run", allowed: []string{"restore"}},
	{subject: "dlq.jobs.init.run", allowed: []string{"init"}},
	{subject: "dlq.jobs.chroma.train", allowed: []string{"chroma"}},
	{subject: "$JS.API.STREAM.CREATE.EVIL", allowed: []string{"provisioner"}},
	{subject: "$JS.API.STREAM.DELETE.JOBS"},
	{subject: "$JS.API.STREAM.DELETE.AUDIT"},
	{subject: "$JS.API.STREAM.PURGE.AUDIT"},
	{subject: "$JS.API.STREAM.MSG.DELETE.AUDIT"},
	{subject: "$JS.API.STREAM.PURGE.JOBS"},
	{subject: "$JS.API.CONSUMER.DELETE.JOBS.backup"},
	{subject: "$JS.API.CONSUMER.CREATE.JOBS.backup.jobs.backup.>", allowed: []string{"backup"}},
	{subject: "$JS.API.CONSUMER.CREATE.JOBS.backup.jobs.restore.>"},
	{subject: "$JS.API.CONSUMER.CREATE.JOBS.restore.jobs.restore.>", allowed: []string{"restore"}},
	{subject: "$JS.API.CONSUMER.CREATE.JOBS.EVIL"},
	{subject: "$JS.API.CONSUMER.MSG.NEXT.JOBS.init", allowed: []string{"init"}},
	{subject: "$JS.API.CONSUMER.MSG.NEXT.JOBS.backup", allowed: []string{"backup"}},
	{subject: "$JS.API.CONSUMER.MSG.NEXT.JOBS.restore", allowed: []string{"restore"}},
	{subject: "$JS.API.CONSUMER.MSG.NEXT.JOBS.chroma", allowed: []string{"chroma"}},
	{subject: "$JS.ACK.JOBS.backup.1.1.1.1.1.0", allowed: []string{"backup"}},
	{subject: "$JS.ACK.JOBS.restore.1.1.1.1.1.0", allowed: []string{"restore"}},
	{subject: "$KV.JOB_PROGRESS.01PROBE", allowed: []string{"provisioner", "api", "init", "backup", "restore", "chroma"}},
	{subject: "$KV.LOCKS.system", allowed: []string{"backup", "restore"}},
	{subject: "$KV.LOCKS.target", allowed: []string{"backup", "restore"}},
	{subject: "$KV.LOCKS.chroma", allowed: []string{"backup", "restore", "chroma"}},
	{subject: "$KV.LOCKS.evil", allowed: nil},
	{subject: "$JS.API.DIRECT.GET.KV_LOCKS.$KV.LOCKS.system", allowed: []string{"api", "init", "backup", "restore", "chroma"}},
	{subject: "$JS.API.STREAM.PURGE.OBJ_BACKUPS", allowed: []string{"backup"}},
	{subject: "$KV.WORKERS.backup.probe", allowed: []string{"backup"}},
	{subject: "$KV.WORKERS.restore.probe", allowed: []string{"restore"}},
	{subject: "$KV.WORKERS.init.probe", allowed: []string{"init"}},
	{subject: "$KV.WORKERS.chroma.probe", allowed: []string{"chroma"}},
	{subject: "$O.BACKUPS.C.probe", allowed: []string{"backup", "restore"}},
	{subject: "$JS.API.STREAM.INFO.OBJ_BACKUPS", allowed: []string{"api", "backup", "restore", "provisioner"}},
	{subject: "$JS.API.CONSUMER.PAUSE.AUDIT.audit-sink", allowed: []string{"restore"}},
	{subject: "$JS.API.CONSUMER.CREATE.AUDIT.audit-sink", allowed: []string{"api"}},
	{subject: "$JS.API.CONSUMER.MSG.NEXT.AUDIT.audit-sink", allowed: []string{"api"}},
	{subject: "$JS.API.CONSUMER.CREATE.AUDIT.siem.audit.>", allowed: []string{"restore"}},
	{subject: "jobs.>", sub: true},
	{subject: "audit.>", sub: true},
	{subject: "$KV.>", sub: true},
	{subject: "$JS.API.>", sub: true},
	// Replies: each role reads its own inboxes (NATS_INBOX_PREFIX), no
	// role the shared default prefix or another's.
	{subject: "_INBOX.probe", sub: true},
	{subject: "_INBOX.>", sub: true},
	{subject: "_INBOX_provisioner.probe", sub: true, allowed: []string{"provisioner"}},
	{subject: "_INBOX_api.probe", sub: true, allowed: []string{"api"}},
	{subject: "_INBOX_init.probe", sub: true, allowed: []string{"init"}},
	{subject: "_INBOX_backup.probe", sub: true, allowed: []string{"backup"}},
	{subject: "_INBOX_restore.probe", sub: true, allowed: []string{"restore"}},
	{subject: "_INBOX_chroma.>", sub: true, allowed: []string{"chroma"}},
	{subject: ">", sub: true},
}

// TestEveryUserHasExactlyThePermissionsOfItsRole publishes (or subscribes)
// as every user on every probe of the matrix, flushes, and checks that the
// server refused exactly the users the row does not allow. Probes carry no
// body, so an allowed JetStream API call is answered with an error and
// changes nothing that matters on this throw-away server.
func TestEveryUserHasExactlyThePermissionsOfItsRole(t *testing.T) {
	// Not parallel: sets process environment variables (t.Setenv) the shipped nats-server.conf reads.
	addr := startFromDeployConfig(t)
	for _, u := range Users {
		nc, _ := connectRaw(t, addr, u)
		for _, p := range probes {
			var err error
			if p.sub {
				var s interface{ Unsubscribe() error }
				s, err = nc.SubscribeSync(p.subject)
				if err == nil {
					defer func() { _ = s.Unsubscribe() }()
				}
			} else {
				err = nc.Publish(p.subject, nil)
			}
			if err == nil {
				err = nc.Flush()
			}
			if err != nil {
				t.Fatalf("%s on %s: %v", u, p.subject, err)
			}
			// The server's -ERR arrives before the PONG that ends Flush, and
			// nats.go keeps it as the connection's last error (the error
			// handler runs later, on its own goroutine).
			last := nc.LastError()
			denied := last != nil && containsFold(last.Error(), "permissions violation") && containsFold(last.Error(), `"`+p.subject+`"`)
			want := slices.Contains(p.allowed, u)
			verb := map[bool]string{true: "subscribe to", false: "publish to"}[p.sub]
			switch {
			case want && denied:
				t.Errorf("%s may not %s %s, but its role needs it", u, verb, p.subject)
			case !want && !denied:
				t.Errorf("%s may %s %s, but its role must not", u, verb, p.subject)
			}
		}
	}
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
