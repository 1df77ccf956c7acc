// Package clustertest holds the fault tests of insightops on a real 3-node
// JetStream cluster (testkit.StartCluster, every stream and bucket R3): the
// real API and two replicas of every worker kind, each on its own NATS
// connection to all three nodes, the System DB on PostgreSQL and a real
// Chroma server. The tests shut down the leader of the JOBS stream, or the
// whole cluster, in the middle of a run and count what was lost or done
// twice (shared/reliability records the numbers).
package clustertest
