package group

import (
	"errors"
	"reflect"
	"testing"
)

func sampleJournal() []byte {
	b := []byte(journalMagic)
	b = appendFrame(b, []record{
		{kind: recGroupType, group: "g", metadata: "consumer"},
		{kind: recCommit, group: "g", topic: "t", partition: 3, offset: 42, epoch: 7, metadata: "m", time: 1700000000000},
	})
	b = appendFrame(b, []record{{kind: recDelete, group: "g", topic: "t", partition: 3}})
	b = appendFrame(b, []record{{kind: recExpire, group: "g", time: -5}, {kind: recDropTopic, topic: "t"}, {kind: recDeleteGroup, group: "x"}})
	return b
}

func TestJournalRoundTrip(t *testing.T) {
	data := sampleJournal()
	frames, good, err := decodeJournal(data)
	if err != nil || good != len(data) || len(frames) != 3 || len(frames[2]) != 3 {
		t.Fatalf("decode: %d frames, good %d of %d, %v", len(frames), good, len(data), err)
	}
	if r := frames[0][1]; r != (record{kind: recCommit, group: "g", topic: "t", partition: 3, offset: 42, epoch: 7, metadata: "m", time: 1700000000000}) {
		t.Fatalf("record %+v", r)
	}
	if _, _, err := decodeJournal(data[:len(data)-1]); !errors.Is(err, errTorn) {
		t.Fatalf("torn: %v", err)
	}
	if _, _, err := decodeJournal([]byte("wisp")); !errors.Is(err, errTorn) {
		t.Fatalf("torn magic: %v", err)
	}
	if _, _, err := decodeJournal([]byte("nope")); !errors.Is(err, errMagic) {
		t.Fatalf("bad magic: %v", err)
	}
}

// FuzzJournal feeds arbitrary bytes to the journal decoder: it must not
// panic, must report a good prefix that decodes to the same frames on its
// own, and whatever it decodes must survive an encode/decode round trip.
func FuzzJournal(f *testing.F) {
	data := sampleJournal()
	f.Add(data)
	f.Add(data[:len(data)-3])
	f.Add([]byte{})
	f.Add([]byte(journalMagic))
	f.Add(append([]byte(journalMagic), 0, 0, 0, 0, 0, 0, 0, 0))
	f.Add(append([]byte(journalMagic), 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4))
	f.Add(append(append([]byte{}, data...), "garbage"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		frames, good, err := decodeJournal(data)
		if good < 0 || good > len(data) {
			t.Fatalf("good %d of %d", good, len(data))
		}
		if err == nil && good != len(data) && len(data) != 0 {
			t.Fatalf("no error but good %d of %d", good, len(data))
		}
		if errors.Is(err, errMagic) {
			return
		}
		if good >= len(journalMagic) {
			again, g2, err2 := decodeJournal(data[:good])
			if err2 != nil || g2 != good || !reflect.DeepEqual(again, frames) {
				t.Fatalf("good prefix decodes differently: %v", err2)
			}
		}
		enc := []byte(journalMagic)
		for _, recs := range frames {
			enc = appendFrame(enc, recs)
		}
		back, g3, err3 := decodeJournal(enc)
		if err3 != nil || g3 != len(enc) || !reflect.DeepEqual(normalize(back), normalize(frames)) {
			t.Fatalf("round trip: %v", err3)
		}
		// Replaying never panics either.
		s := &store{groups: map[string]*storeGroup{}}
		for _, recs := range frames {
			for i := range recs {
				s.applyLocked(&recs[i])
			}
		}
		if len(s.groups) == 0 && s.live != 0 {
			t.Fatalf("live estimate %d with no groups", s.live)
		}
	})
}

// normalize makes empty and nil frame lists compare equal.
func normalize(frames [][]record) [][]record {
	out := [][]record{}
	for _, f := range frames {
		if f == nil {
			f = []record{}
		}
		out = append(out, f)
	}
	return out
}

// FuzzJournalPayload fuzzes the record decoder behind the CRC, which
// FuzzJournal seldom reaches.
func FuzzJournalPayload(f *testing.F) {
	data := sampleJournal()[len(journalMagic):]
	for len(data) > 0 {
		_, n, err := decodeFrame(data)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data[frameHeaderSize:n])
		data = data[n:]
	}
	f.Add([]byte{0})
	f.Add([]byte{1, 9})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, payload []byte) {
		recs, err := decodePayload(payload)
		if err != nil {
			return
		}
		frame := appendFrame(nil, recs)
		back, n, err := decodeFrame(frame)
		if err != nil || n != len(frame) || !reflect.DeepEqual(normalize([][]record{back}), normalize([][]record{recs})) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
