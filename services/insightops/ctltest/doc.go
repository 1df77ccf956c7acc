// Package ctltest runs insightctl (services/insightctl/cli) end to end
// against real all-in-one instances (embedded NATS, SQLite, a Chroma
// server): logging in, backing up with the wait on the job's events,
// listing as JSON, downloading with the digest checked, importing into a
// second instance and restoring there, the documented exit codes, and the
// progress bar drawn in a real terminal (tmux). The package has no code
// outside its tests.
package ctltest
