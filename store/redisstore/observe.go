package redisstore

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Observer is told of every call to Redis, for metrics of latency and
// errors: command is the command's name in lower case ("hget", "xread"),
// the script's name for a script ("append", "complete", "renew"), or
// "pipeline" for a pipeline a method sends (a batch of concurrent calls'
// commands is reported command by command, each with the
// batch's time); err is nil for a success, including a missing key. The
// connection handshake (HELLO, AUTH, SELECT) is not reported, nor the
// NOSCRIPT answer that makes the client send a script Redis forgot (after
// a restart): the call that follows is.
type Observer func(command string, took time.Duration, err error)

// scriptNames names the scripts by their SHA-1, for the Observer.
var scriptNames = map[string]string{
	appendScript.Hash():       "append",
	progressScript.Hash():     "progress",
	completeScript.Hash():     "complete",
	deadLetterScript.Hash():   "dead_letter",
	replayScript.Hash():       "replay",
	dropScript.Hash():         "drop",
	applyScript.Hash():        "apply",
	expireStatesScript.Hash(): "expire_states",
	seenAndStateScript.Hash(): "seen_and_state",
	openScript.Hash():         "open",
	renewScript.Hash():        "renew",
	acquireScript.Hash():      "acquire",
	releaseScript.Hash():      "release",
}

// observeHook is a redis.Hook that times every command for an Observer.
type observeHook struct{ observe Observer }

var _ redis.Hook = observeHook{}

func (h observeHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h observeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		if err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
			h.observe(commandName(cmd), time.Since(start), observedErr(err))
		}
		return err
	}
}

func (h observeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		if len(cmds) > 0 && slices.Contains([]string{"hello", "auth", "select"}, cmds[0].Name()) {
			return err // the connection handshake
		}
		took := time.Since(start)
		if ctx.Value(batchKey{}) != nil {
			// The batched commands of concurrent calls (pipeline.go):
			// each is reported as if sent alone, with the pipeline's
			// time and its own error.
			for _, cmd := range cmds {
				if cerr := cmd.Err(); cerr == nil || !strings.HasPrefix(cerr.Error(), "NOSCRIPT") {
					h.observe(commandName(cmd), took, observedErr(cerr))
				}
			}
			return err
		}
		h.observe("pipeline", took, observedErr(err))
		return err
	}
}

// commandName is the script's name for EVAL and EVALSHA, else the
// command's.
func commandName(cmd redis.Cmder) string {
	name := cmd.Name()
	args := cmd.Args()
	if len(args) < 2 || (name != "evalsha" && name != "eval") {
		return name
	}
	sha, ok := args[1].(string)
	if !ok {
		return name
	}
	if name == "eval" {
		sum := sha1.Sum([]byte(sha))
		sha = hex.EncodeToString(sum[:])
	}
	if n, ok := scriptNames[sha]; ok {
		return n
	}
	return name
}

func observedErr(err error) error {
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}
