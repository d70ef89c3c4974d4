// Package chaos is wisp's fault-injection suite: it runs real `wisp serve`
// processes, each in its own Linux network namespace behind one bridge,
// drives idempotent acks=all producers and a consumer group through them
// while a nemesis kills, pauses, partitions, slows, fills and restarts
// nodes, and then checks the recorded histories against every replica's
// log, in the spirit of Jepsen's queue checker.
//
// The checker (Check) is plain Go over a History and the final logs and is
// unit-tested on synthetic histories; the harness (Net, Cluster) needs root
// and iproute2. See docs/reliability.md for how to run it
// (`make chaos`, `make chaos-full`) and the measured results.
package chaos
