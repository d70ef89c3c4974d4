package group

import (
	"fmt"
	"strconv"
)

// Entry is one offsets-journal record as a keyed message, for a clustered
// broker to append to a replicated, compacted log. Keys are chosen so that
// compaction by key keeps what a replay needs: a later record of a key
// supersedes an earlier one (a delete supersedes the commit of the same
// group/topic/partition), and records of other kinds keep their order.
type Entry struct {
	Key   []byte
	Value []byte
}

// entryOf encodes a journal record as an Entry.
func entryOf(r *record) Entry {
	var key string
	switch r.kind {
	case recCommit, recDelete:
		key = "o\x00" + r.group + "\x00" + r.topic + "\x00" + strconv.Itoa(int(r.partition))
	case recExpire:
		key = "e\x00" + r.group
	case recDropTopic:
		key = "t\x00" + r.topic
	case recDeleteGroup:
		key = "g\x00" + r.group
	case recGroupType:
		key = "y\x00" + r.group
	}
	return Entry{Key: []byte(key), Value: appendRecord(nil, r)}
}

// decodeEntry decodes an Entry's value.
func decodeEntry(value []byte) (record, error) {
	p := payloadReader{b: value}
	r := p.record()
	if p.err == nil && len(p.b) != 0 {
		p.err = errCorrupt
	}
	if p.err != nil {
		return record{}, fmt.Errorf("group: replicated offsets record: %w", p.err)
	}
	return r, nil
}

// Restore replaces every committed offset with a replay of values (Entry
// values in log order, read back from the replicated log) and rewrites the
// local journal to match. A clustered broker calls it when it becomes the
// coordinator, before it serves group requests. A value that does not
// decode fails the restore and changes nothing.
func (c *Coordinator) Restore(values [][]byte) error {
	recs := make([]record, 0, len(values))
	for _, v := range values {
		r, err := decodeEntry(v)
		if err != nil {
			return err
		}
		recs = append(recs, r)
	}
	req := &writeReq{recs: recs, restore: true, done: make(chan error, 1)}
	s := c.store
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.queue = append(s.queue, req)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return <-req.done
}
