// Package chaos holds the fault-injection tests that run the real worker
// binaries (services/init, services/backup, services/chroma, built once per
// test run) as OS processes against an embedded NATS server, PostgreSQL and
// a Chroma server: workers SIGKILLed at random moments of a mixed run
// (TestFaultWorkerProcessKill) and a backup volume that fills up
// (TestFaultBackupDiskFull). The package has no code outside its tests.
package chaos
