package group_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/wispbus/wisp/bus/group"
)

// A one-member group: join (the member leads and assigns), sync, commit,
// and the committed offset survives a restart.
func Example() {
	dir, _ := os.MkdirTemp("", "wisp-group-example")
	defer os.RemoveAll(dir)
	cfg := group.DefaultConfig()
	cfg.Dir = dir
	c, err := group.Open(cfg)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	j, err := c.Join(ctx, group.JoinRequest{
		Group: "billing", ClientID: "worker", ProtocolType: "consumer",
		Protocols:      []group.Protocol{{Name: "range", Metadata: []byte("subscription")}},
		SessionTimeout: 10 * time.Second, RebalanceTimeout: time.Minute,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("generation", j.Generation, "leader", j.LeaderID == j.MemberID, "members", len(j.Members))

	plan := map[string][]byte{j.MemberID: []byte("invoices/0-2")}
	mine, err := c.Sync(ctx, group.SyncRequest{Group: "billing", MemberID: j.MemberID, Generation: j.Generation, Assignments: plan})
	if err != nil {
		panic(err)
	}
	fmt.Println("assignment", string(mine))

	tp := group.TopicPartition{Topic: "invoices", Partition: 0}
	if err := c.CommitOffsets("billing", j.MemberID, j.Generation, map[group.TopicPartition]group.OffsetCommit{tp: {Offset: 42}}); err != nil {
		panic(err)
	}
	c.Close()

	c, _ = group.Open(cfg)
	defer c.Close()
	got, _ := c.FetchOffsets("billing", nil)
	fmt.Println("committed", got[tp].Offset)
	// Output:
	// generation 1 leader true members 1
	// assignment invoices/0-2
	// committed 42
}
