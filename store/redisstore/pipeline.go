package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Auto-pipelining: the commands of concurrent Store calls go to Redis
// together. A call puts its command on the batcher's queue and waits; the
// batcher takes every command queued (up to maxBatch), sends them as one
// pipeline (one write, one read) and hands each call its own command's
// result. While a pipeline is in flight new commands queue, so batches grow
// with the load; a lone call goes out at once, since the batcher waits for
// nothing but the first command. The gateway spends most of its time on
// Redis in round trips (syscalls, goroutine wake-ups), which a batch shares.
//
// Each command keeps its own reply: a script's error (TGFENCED, TGFULL)
// goes to its caller only, while a connection error fails every command of
// the pipeline, as it would have failed each alone. Pipelines are not
// retried (MaxRetries -1): a script whose reply was lost may have run.
//
// A caller whose context ends stops waiting; its command may still run, as
// when a context ends during a lone command. The pipeline itself runs under
// no caller's context, so one caller's cancellation does not touch the
// others' commands. A command whose caller left before the batch was taken
// is not sent.

// maxBatch bounds the commands sent in one pipeline.
const maxBatch = 128

// batchKey marks the context of the batcher's pipelines, so that the
// observer reports their commands one by one (observe.go).
type batchKey struct{}

// call is one command waiting in the batcher's queue.
type call struct {
	ctx  context.Context
	cmd  redis.Cmder
	done chan struct{} // receives once cmd has its result
}

// batcher sends the queued commands of concurrent calls as pipelines.
type batcher struct {
	rdb    *redis.Client
	max    int // commands in one pipeline at most
	queue  chan *call
	quit   chan struct{} // closed by stop
	exited chan struct{} // closed when run returns
}

// newBatcher starts a batcher sending at most max commands at once on
// rdb.
func newBatcher(rdb *redis.Client, max int) *batcher {
	b := &batcher{
		rdb:    rdb,
		max:    max,
		queue:  make(chan *call, max),
		quit:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go b.run()
	return b
}

// stop ends the batcher and waits for it. Calls waiting then fail with
// redis.ErrClosed.
func (b *batcher) stop() {
	close(b.quit)
	<-b.exited
}

// do sends cmd with the commands of concurrent calls and waits for its
// result, which it returns as cmd.Err(). When ctx ends first it returns
// ctx's error, and cmd must not be read.
func (b *batcher) do(ctx context.Context, cmd redis.Cmder) error {
	c := &call{ctx: ctx, cmd: cmd, done: make(chan struct{}, 1)}
	select {
	case b.queue <- c:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.exited:
		return redis.ErrClosed
	}
	select {
	case <-c.done:
		return cmd.Err()
	case <-ctx.Done():
		return ctx.Err()
	case <-b.exited:
		select {
		case <-c.done:
			return cmd.Err()
		default:
			return redis.ErrClosed
		}
	}
}

// run takes the queued calls in batches until stop.
func (b *batcher) run() {
	defer close(b.exited)
	ctx := context.WithValue(context.Background(), batchKey{}, true)
	pipe := b.rdb.Pipeline()
	batch := make([]*call, 0, b.max)
	for {
		select {
		case c := <-b.queue:
			batch = append(batch, c)
		case <-b.quit:
			return
		}
	more:
		for len(batch) < b.max {
			select {
			case c := <-b.queue:
				batch = append(batch, c)
			default:
				break more
			}
		}
		for _, c := range batch {
			if err := c.ctx.Err(); err != nil {
				c.cmd.SetErr(err) // its caller has left: not sent
				continue
			}
			_ = pipe.Process(ctx, c.cmd)
		}
		// Every command's own error is set on it: Exec's is the first.
		_, _ = pipe.Exec(ctx)
		for i, c := range batch {
			c.done <- struct{}{}
			batch[i] = nil
		}
		batch = batch[:0]
	}
}

// evalArgs returns the arguments of EVALSHA of sc on the store's keys.
func (s *Store) evalArgs(sc *redis.Script, args []any) []any {
	keys := s.keys()
	out := make([]any, 0, 3+len(keys)+len(args))
	out = append(out, "evalsha", sc.Hash(), len(keys))
	for _, k := range keys {
		out = append(out, k)
	}
	return append(out, args...)
}

// eval runs sc with args in a pipeline with concurrent calls. When Redis
// answers NOSCRIPT (it restarted and forgot its scripts; the script did
// not run) it loads the script again and runs it alone.
func (s *Store) eval(ctx context.Context, sc *redis.Script, args ...any) *redis.Cmd {
	cmd := redis.NewCmd(ctx, s.evalArgs(sc, args)...)
	err := s.batch.do(ctx, cmd)
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return failedCmd(ctx, err)
		}
		return sc.Run(ctx, s.rdb, s.keys(), args...)
	}
	if err != nil {
		// cmd's own error, or ctx's or the store's: then cmd is not ours
		// to read.
		return failedCmd(ctx, err)
	}
	return cmd
}

// failedCmd returns a command that failed with err without being sent.
func failedCmd(ctx context.Context, err error) *redis.Cmd {
	cmd := redis.NewCmd(ctx)
	cmd.SetErr(err)
	return cmd
}

// pipelinedScripts are the scripts the store runs through eval.
var pipelinedScripts = []*redis.Script{appendScript, progressScript, completeScript, deadLetterScript, replayScript, dropScript, applyScript, seenAndStateScript}

// loadScripts loads the scripts the store pipelines into Redis's script
// cache (SCRIPT LOAD), so that their EVALSHA finds them; after a NOSCRIPT,
// eval loads the one it ran again.
func (s *Store) loadScripts(ctx context.Context) error {
	for _, sc := range pipelinedScripts {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}
