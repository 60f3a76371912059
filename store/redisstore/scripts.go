package redisstore

import "github.com/redis/go-redis/v9"

// Every change is one Lua script, so that Redis runs it atomically: nothing
// else runs between its commands, and with the append-only file every
// command of a script is written before the reply.
//
// KEYS[1] is the meta hash (it routes the script in a Redis Cluster, where
// every key carries the same hash tag); ARGV[1] is the key prefix, from
// which the scripts name the other keys:
//
//	meta        hash: pending, bytes, evicted, partitions
//	seq         string: the last sequence number given
//	s:N         stream of partition N; entry ID "seq-0", fields l (lane),
//	            b (body), a (accept time, Unix ns), r (replay of)
//	e:SEQ       hash of a pending event: n (partition), z (size), p (progress)
//	d:ID        hash of a dead letter: l, b, a, r as above, z, p, f (failure)
//	dz          sorted set of dead letter IDs (score = ID)
//	st          hash: conversation key -> encoded state
//	sa          sorted set: conversation key by last activity (Unix µs)
//	sk          sorted set: conversation keys, all of score 0 (scan order)
//	dd          sorted set: dedup key by expiry (Unix µs)
//	l:N         the lease of partition N: "token:owner", with a TTL
//	f:N         the fencing token counter of partition N
//	m           sorted set: replica ID by heartbeat expiry (Redis time, ms)
//
// Errors are returned with redis.error_reply and a code the Go side maps to
// the store's errors (see codes in redisstore.go).

// luaLib is prepended to every script that changes events.
const luaLib = `
local P = ARGV[1]
local function fenced(part, fpart, flease)
  if flease == '' then return false end
  if part ~= fpart then return true end
  return redis.call('GET', P .. 'l:' .. part) ~= flease
end
-- apply writes a completion whose arguments start at ARGV[i]: state key
-- ('' for none), encoded state, activity score, max states, dedup expiry
-- score, max dedup keys, number of dedup keys, the keys.
local function apply(i)
  local skey = ARGV[i]
  if skey ~= '' then
    redis.call('HSET', P .. 'st', skey, ARGV[i+1])
    redis.call('ZADD', P .. 'sa', ARGV[i+2], skey)
    redis.call('ZADD', P .. 'sk', 0, skey)
    local over = redis.call('ZCARD', P .. 'sa') - tonumber(ARGV[i+3])
    if over > 0 then
      local gone = redis.call('ZPOPMIN', P .. 'sa', over)
      for j = 1, #gone, 2 do
        redis.call('HDEL', P .. 'st', gone[j])
        redis.call('ZREM', P .. 'sk', gone[j])
      end
    end
  end
  local nk = tonumber(ARGV[i+6])
  for j = 1, nk do
    redis.call('ZADD', P .. 'dd', 'GT', ARGV[i+4], ARGV[i+6+j])
  end
  if nk > 0 then
    local over = redis.call('ZCARD', P .. 'dd') - tonumber(ARGV[i+5])
    if over > 0 then redis.call('ZPOPMIN', P .. 'dd', over) end
  end
end
local function fits(n, size)
  local m = redis.call('HMGET', P .. 'meta', 'pending', 'bytes')
  return tonumber(m[1] or '0') + n <= tonumber(ARGV[2]) and tonumber(m[2] or '0') + size <= tonumber(ARGV[3])
end
local function id(seq) return string.format('%d-0', seq) end
`

// appendScript: ARGV[2..3] max pending and bytes, ARGV[4] accept time,
// ARGV[5] the number of events, then per event partition, lane, body,
// size. It returns the first sequence number; the others follow it.
var appendScript = redis.NewScript(luaLib + `
local now, n = ARGV[4], tonumber(ARGV[5])
local add = 0
for i = 0, n - 1 do add = add + tonumber(ARGV[9 + i*4]) end
if not fits(n, add) then return redis.error_reply('TGFULL') end
local last = redis.call('INCRBY', P .. 'seq', n)
local first = last - n + 1
for i = 0, n - 1 do
  local part, seq = ARGV[6 + i*4], first + i
  redis.call('XADD', P .. 's:' .. part, id(seq), 'l', ARGV[7 + i*4], 'b', ARGV[8 + i*4], 'a', now, 'r', '0')
  redis.call('HSET', P .. 'e:' .. string.format('%d', seq), 'n', part, 'z', ARGV[9 + i*4], 'p', '')
end
redis.call('HINCRBY', P .. 'meta', 'pending', n)
redis.call('HINCRBY', P .. 'meta', 'bytes', add)
return first
`)

// progressScript: ARGV[2] seq, ARGV[3..4] fence (partition, lease),
// ARGV[5] encoded progress.
var progressScript = redis.NewScript(luaLib + `
local ek = P .. 'e:' .. ARGV[2]
local part = redis.call('HGET', ek, 'n')
if not part then return redis.error_reply('TGNOTFOUND') end
if fenced(part, ARGV[3], ARGV[4]) then return redis.error_reply('TGFENCED') end
redis.call('HSET', ek, 'p', ARGV[5])
return 1
`)

// completeScript: ARGV[2] seq, ARGV[3..4] fence, ARGV[5..] the completion.
var completeScript = redis.NewScript(luaLib + `
local ek = P .. 'e:' .. ARGV[2]
local ev = redis.call('HMGET', ek, 'n', 'z')
if not ev[1] then return redis.error_reply('TGNOTFOUND') end
if fenced(ev[1], ARGV[3], ARGV[4]) then return redis.error_reply('TGFENCED') end
redis.call('XDEL', P .. 's:' .. ev[1], ARGV[2] .. '-0')
redis.call('DEL', ek)
redis.call('HINCRBY', P .. 'meta', 'pending', -1)
redis.call('HINCRBY', P .. 'meta', 'bytes', -tonumber(ev[2]))
apply(5)
return 1
`)

// deadLetterScript: ARGV[2] seq, ARGV[3..4] fence, ARGV[5] encoded
// failure, ARGV[6] max dead letters, ARGV[7..] the completion.
var deadLetterScript = redis.NewScript(luaLib + `
local seq = ARGV[2]
local ek = P .. 'e:' .. seq
local ev = redis.call('HMGET', ek, 'n', 'z', 'p')
if not ev[1] then return redis.error_reply('TGNOTFOUND') end
if fenced(ev[1], ARGV[3], ARGV[4]) then return redis.error_reply('TGFENCED') end
local sk = P .. 's:' .. ev[1]
local ent = redis.call('XRANGE', sk, seq .. '-0', seq .. '-0')
if #ent ~= 1 then return redis.error_reply('TGCORRUPT event ' .. seq .. ' has progress but no stream entry') end
local args = {'HSET', P .. 'd:' .. seq, 'f', ARGV[5], 'p', ev[3], 'z', ev[2]}
for _, v in ipairs(ent[1][2]) do args[#args + 1] = v end
redis.call(unpack(args))
redis.call('ZADD', P .. 'dz', seq, seq)
redis.call('XDEL', sk, seq .. '-0')
redis.call('DEL', ek)
redis.call('HINCRBY', P .. 'meta', 'pending', -1)
redis.call('HINCRBY', P .. 'meta', 'bytes', -tonumber(ev[2]))
local over = redis.call('ZCARD', P .. 'dz') - tonumber(ARGV[6])
if over > 0 then
  local gone = redis.call('ZPOPMIN', P .. 'dz', over)
  for j = 1, #gone, 2 do redis.call('DEL', P .. 'd:' .. gone[j]) end
  redis.call('HINCRBY', P .. 'meta', 'evicted', over)
end
apply(7)
return 1
`)

// replayScript: ARGV[2..3] max pending and bytes, ARGV[4] dead letter ID,
// ARGV[5] its partition, ARGV[6] the progress it starts with. It returns
// the new sequence number.
var replayScript = redis.NewScript(luaLib + `
local dk = P .. 'd:' .. ARGV[4]
local d = redis.call('HMGET', dk, 'l', 'b', 'a', 'z')
if not d[1] then return redis.error_reply('TGNOTFOUND') end
if not fits(1, tonumber(d[4])) then return redis.error_reply('TGFULL') end
local seq = redis.call('INCR', P .. 'seq')
redis.call('XADD', P .. 's:' .. ARGV[5], id(seq), 'l', d[1], 'b', d[2], 'a', d[3], 'r', ARGV[4])
redis.call('HSET', P .. 'e:' .. string.format('%d', seq), 'n', ARGV[5], 'z', d[4], 'p', ARGV[6])
redis.call('DEL', dk)
redis.call('ZREM', P .. 'dz', ARGV[4])
redis.call('HINCRBY', P .. 'meta', 'pending', 1)
redis.call('HINCRBY', P .. 'meta', 'bytes', tonumber(d[4]))
return seq
`)

// dropScript: ARGV[2] dead letter ID.
var dropScript = redis.NewScript(luaLib + `
if redis.call('ZREM', P .. 'dz', ARGV[2]) == 0 then return redis.error_reply('TGNOTFOUND') end
redis.call('DEL', P .. 'd:' .. ARGV[2])
return 1
`)

// applyScript applies a completion alone (SaveState, Remember): ARGV[2..]
// the completion.
var applyScript = redis.NewScript(luaLib + `
apply(2)
return 1
`)

// expireStatesScript: ARGV[2] the activity score before which states are
// forgotten (exclusive), ARGV[3] the most to forget in one run. It returns
// how many it forgot.
var expireStatesScript = redis.NewScript(luaLib + `
local gone = redis.call('ZRANGE', P .. 'sa', '-inf', '(' .. ARGV[2], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]))
for _, k in ipairs(gone) do
  redis.call('ZREM', P .. 'sa', k)
  redis.call('ZREM', P .. 'sk', k)
  redis.call('HDEL', P .. 'st', k)
end
return #gone
`)

// openScript records the number of partitions on first use and returns
// the number recorded.
var openScript = redis.NewScript(luaLib + `
redis.call('HSETNX', P .. 'meta', 'partitions', ARGV[2])
return tonumber(redis.call('HGET', P .. 'meta', 'partitions'))
`)

// seenAndStateScript: ARGV[2] a dedup key, ARGV[3] a state key. It reads,
// without changing anything, the dedup key's expiry (Unix µs) and the
// state, each false when there is none.
var seenAndStateScript = redis.NewScript(`
local P = ARGV[1]
local exp = redis.call('ZSCORE', P .. 'dd', ARGV[2])
local st = redis.call('HGET', P .. 'st', ARGV[3])
return {exp, st}
`)
