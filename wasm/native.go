package wasm

import (
	"context"
	"fmt"

	"github.com/wispbus/wisp/internal/batch"
)

// NativeFunc is a function written in Go, run in the host in place of a
// module: the baseline of the benchmarks, and a way for a program that
// embeds wisp to deploy transforms without WebAssembly. It has the
// semantics of an SDK handler: write zero or more outputs for in, or
// return an error to fail that record.
type NativeFunc func(in *batch.Record, out *Emitter) error

// Emitter collects a NativeFunc's outputs for one input record.
type Emitter struct {
	res *Results
	i   int
	in  *batch.Record
}

// Write adds an output record. Topic "" is the default output; Partition
// -1 lets the host choose.
func (e *Emitter) Write(o Output) { e.res.Append(e.i, o) }

// Forward passes the input record through, unchanged, to topic.
func (e *Emitter) Forward(topic string) {
	e.res.Append(e.i, Output{Topic: topic, Partition: -1, Forward: true, Record: *e.in})
}

// Native turns fn into a Processor.
func Native(fn NativeFunc) Processor { return native(fn) }

type native NativeFunc

func (fn native) Process(ctx context.Context, in *Batch, out *Results) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	out.Reset(len(in.Records))
	e := Emitter{res: out}
	for i := range in.Records {
		e.i, e.in = i, &in.Records[i]
		if err := fn.call(e.in, &e); err != nil {
			out.Fail(i, err.Error())
		}
	}
	return nil
}

func (fn native) call(in *batch.Record, e *Emitter) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn(in, e)
}
