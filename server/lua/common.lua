-- common.lua: prepended to every script. ARGV[1] is the key prefix, which
-- carries the hash tag (e.g. "{trident}"), so every key shares one slot.
local P = ARGV[1]
local function tkey(id) return P .. ':t:' .. id end
local function qkey(q, what) return P .. ':q:' .. q .. ':' .. what end
local RUNNING = P .. ':running'
local SCHED = P .. ':sched'
local QUEUES = P .. ':queues'

-- Ready order: higher priority first, FIFO within one priority. The score is
-- (1000 - priority) * 2^41 + 2^40 + seq; requeues at the front use
-- 2^40 - front instead, so they precede every task of their priority.
local P41 = 2199023255552
local P40 = 1099511627776
local function ready_score(prio, seq) return (1000 - prio) * P41 + P40 + seq end
local function push_ready(q, id, prio, front)
  local m = qkey(q, 'm')
  local score
  if front then
    score = ready_score(prio, -redis.call('HINCRBY', m, 'front', 1))
  else
    score = ready_score(prio, redis.call('HINCRBY', m, 'seq', 1))
  end
  redis.call('ZADD', qkey(q, 'ready'), score, id)
end

-- Commands of many arguments go out in chunks: Lua's unpack has a limit.
local CHUNK = 2000
local function call_chunked(cmd, key, args)
  for i = 1, #args, CHUNK do
    redis.call(cmd, key, unpack(args, i, math.min(i + CHUNK - 1, #args)))
  end
end

-- add_counts: HINCRBY of a per-queue counter once per queue, from a table
-- of queue -> delta.
local function add_counts(deltas, field)
  for q, d in pairs(deltas) do
    if d ~= 0 then redis.call('HINCRBY', qkey(q, 'm'), field, d) end
  end
end

local FINAL = { succeeded = true, dead = true, cancelled = true }

-- unlink: takes the task out of whatever its state keeps it in, and fixes
-- the per-queue counters. Returns nothing; the caller sets the new state.
local function unlink(id, q, s)
  if s == 'queued' then
    redis.call('ZREM', qkey(q, 'ready'), id)
  elseif s == 'scheduled' then
    redis.call('ZREM', SCHED, id)
    redis.call('HDEL', tkey(id), 'ra')
    redis.call('HINCRBY', qkey(q, 'm'), 'nsch', -1)
  elseif s == 'retrying' then
    redis.call('ZREM', SCHED, id)
    redis.call('HDEL', tkey(id), 'ra')
    redis.call('HINCRBY', qkey(q, 'm'), 'nrt', -1)
  elseif s == 'running' then
    redis.call('ZREM', RUNNING, id)
    redis.call('HINCRBY', qkey(q, 'm'), 'nrun', -1)
  end
end

-- finish: the task reaches a final state. Tells waiting brokers, then keeps
-- it for its result ttl (0: not at all); dead tasks stay until retried or
-- purged. counter is the per-queue counter to bump (ok, bur, cxl).
local function finish(id, q, state, now, counter)
  local k = tkey(id)
  redis.call('HSET', k, 's', state, 'f', now)
  redis.call('HDEL', k, 'wk')
  redis.call('HINCRBY', qkey(q, 'm'), counter, 1)
  local w, ttl = unpack(redis.call('HMGET', k, 'w', 'ttl'))
  if w == '1' then
    redis.call('PUBLISH', P .. ':done', id)
  end
  if state == 'dead' then
    redis.call('ZADD', qkey(q, 'dead'), now, id)
    return
  end
  ttl = tonumber(ttl)
  if ttl > 0 then redis.call('PEXPIRE', k, ttl) else redis.call('DEL', k) end
end

-- notify: tells every broker that queue q has ready tasks.
local function notify(queues)
  for q, _ in pairs(queues) do redis.call('PUBLISH', P .. ':ready', q) end
end

-- lost: a running task whose worker died or went silent. Requeued at the
-- front with its attempt counted, or dead when no attempt is left.
local function lost(id, q, now, why)
  local k = tkey(id)
  local a, mr, prio = unpack(redis.call('HMGET', k, 'a', 'mr', 'pr'))
  unlink(id, q, 'running')
  redis.call('HSET', k, 'ec', 'WORKER_LOST', 'em', why)
  redis.call('HINCRBY', qkey(q, 'm'), 'fail', 1)
  if tonumber(a) >= tonumber(mr) + 1 then
    finish(id, q, 'dead', now, 'bur')
    return 'dead'
  end
  redis.call('HSET', k, 's', 'queued')
  redis.call('HDEL', k, 'wk')
  push_ready(q, id, tonumber(prio), true)
  return 'queued'
end
