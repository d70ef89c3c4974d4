package transport

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestReqCtx(t *testing.T) {
	waitDone := func(t *testing.T, c context.Context) {
		t.Helper()
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed")
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"deadline, Done first", func(t *testing.T) {
			c := newReqCtx(context.Background(), 10*time.Millisecond)
			defer c.release()
			waitDone(t, c)
			if !errors.Is(c.Err(), context.DeadlineExceeded) {
				t.Fatalf("Err = %v", c.Err())
			}
		}},
		{"deadline, Err without Done", func(t *testing.T) {
			c := newReqCtx(context.Background(), time.Millisecond)
			defer c.release()
			if c.Err() != nil {
				t.Fatalf("Err before deadline = %v", c.Err())
			}
			time.Sleep(5 * time.Millisecond)
			if !errors.Is(c.Err(), context.DeadlineExceeded) {
				t.Fatalf("Err = %v", c.Err())
			}
			waitDone(t, c) // already closed
		}},
		{"parent cancelled while armed", func(t *testing.T) {
			p, cancel := context.WithCancel(context.Background())
			c := newReqCtx(p, time.Hour)
			defer c.release()
			d := c.Done()
			cancel()
			waitDone(t, c)
			if !errors.Is(c.Err(), context.Canceled) {
				t.Fatalf("Err = %v", c.Err())
			}
			<-d
		}},
		{"parent cancelled before Done", func(t *testing.T) {
			p, cancel := context.WithCancel(context.Background())
			cancel()
			c := newReqCtx(p, time.Hour)
			defer c.release()
			waitDone(t, c)
			if !errors.Is(c.Err(), context.Canceled) {
				t.Fatalf("Err = %v", c.Err())
			}
		}},
		{"released before deadline", func(t *testing.T) {
			c := newReqCtx(context.Background(), 20*time.Millisecond)
			_ = c.Done()
			c.release()
			time.Sleep(40 * time.Millisecond)
			if c.Err() != nil {
				t.Fatalf("Err after release = %v", c.Err())
			}
		}},
		{"derived context", func(t *testing.T) {
			c := newReqCtx(context.Background(), 10*time.Millisecond)
			defer c.release()
			d, cancel := context.WithCancel(c)
			defer cancel()
			waitDone(t, d)
			if dl, ok := d.Deadline(); !ok || dl != c.deadline {
				t.Fatalf("Deadline = %v, %v", dl, ok)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}
