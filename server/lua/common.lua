-- common.lua: prepended to every script. ARGV[1] is the key prefix, which
-- carries the hash tag (e.g. "{trident}"), so every key shares one slot.
local P = ARGV[1]
local function tkey(id) return P .. ':t:' .. id end
local function qkey(q, what) return P .. ':q:' .. q .. ':' .. what end
local RUNNING = P .. ':running'
local SCHED = P .. ':sched'
local QUEUES = P .. ':queues'
local EXPIRING = P .. ':x'

-- Ready order: higher priority first, FIFO within one priority. A queue's
-- ready tasks of one priority are a list (pushed at the back, popped from
-- the front; tasks taken back from a lost worker go to the front), and
-- the queue's sorted set of priorities (score -priority) says which lists
-- may hold tasks: a priority stays in it until a fetch finds its list empty.
local function rkey(q, prio) return P .. ':q:' .. q .. ':r:' .. prio end
local function push_ready(q, id, prio, front)
  redis.call(front and 'LPUSH' or 'RPUSH', rkey(q, prio), id)
  redis.call('ZADD', qkey(q, 'prios'), -prio, prio)
end

-- ready_len: the number of ready tasks of queue q.
local function ready_len(q)
  local n = 0
  for _, pr in ipairs(redis.call('ZRANGE', qkey(q, 'prios'), 0, -1)) do
    n = n + redis.call('LLEN', rkey(q, pr))
  end
  return n
end

-- pop_ready: up to count ready ids of queue q, highest priority first.
local function pop_ready(q, count)
  local out = {}
  for _, pr in ipairs(redis.call('ZRANGE', qkey(q, 'prios'), 0, -1)) do
    local got = redis.call('LPOP', rkey(q, pr), count - #out)
    if got then
      for i = 1, #got do out[#out + 1] = got[i] end
    end
    if #out >= count then break end
    redis.call('ZREM', qkey(q, 'prios'), pr) -- its list is empty now
  end
  return out
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

-- Finished tasks are deleted by expire.lua, not by Redis key expiry: a key
-- with a TTL makes every later lookup of every key also search Redis's
-- table of expiring keys, and a queue keeps millions of finished tasks.
-- A task finished at f with result ttl t goes into the list {P}:x:<s>,
-- s = floor((f + t) / 1000) + 1, a second by the time of which it is due;
-- the sorted set {P}:x holds those seconds.
-- expire_bucket: that second, as a string, for a ttl as stored ('0' is
-- not kept at all and has no bucket).
local function expire_bucket(now, ttl)
  return tostring(math.floor((now + tonumber(ttl)) / 1000) + 1)
end

-- A task kept for no time (ttl '0') that someone waits for through
-- another broker, or that finishes by a CANCEL, is kept this long instead
-- (ms, as a ttl string), so the brokers of its waiters can read it: long
-- enough for one that lost its Redis connection for a while to reconnect
-- and read the tasks it waits for.
local WAITED = '60000'

-- kept_ttl: how long a task that just finished stays, as a ttl string: its
-- own ttl, or WAITED when that is '0' and w names waiters that must read it
-- (any broker but node; node nil: every broker, this one too).
local function kept_ttl(ttl, w, node)
  if ttl == '0' and w and w ~= node then return WAITED end
  return ttl
end

-- expire_later: adds ids to a second's list.
local function expire_later(second, ids)
  call_chunked('RPUSH', EXPIRING .. ':' .. second, ids)
  redis.call('ZADD', EXPIRING, second, second)
end

-- unlink: takes the task out of whatever its state keeps it in, and fixes
-- the per-queue counters. Returns nothing; the caller sets the new state.
local function unlink(id, q, s)
  if s == 'queued' then
    redis.call('LREM', rkey(q, redis.call('HGET', tkey(id), 'pr')), 1, id)
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
  if w then
    redis.call('PUBLISH', P .. ':done', id)
  end
  if state == 'dead' then
    redis.call('ZADD', qkey(q, 'dead'), now, id)
    return
  end
  ttl = kept_ttl(ttl, w, nil)
  if ttl ~= '0' then expire_later(expire_bucket(now, ttl), { id }) else redis.call('DEL', k) end
end

-- read_view: the task fields GET reports, as watch.lua returns them (the
-- broker reads them by position: tasks.c's V_* order).
local function read_view(k)
  return redis.call('HMGET', k, 'q', 'n', 's', 'a', 'mr', 'pr', 'c', 'ra', 'st', 'f', 'pg', 'pm',
                    'r', 'ec', 'em')
end

-- add_waiter: records that broker node waits for task key k to be final:
-- w is the one waiting broker's id, or '*' for several.
local function add_waiter(k, node)
  local w = redis.call('HGET', k, 'w')
  if w ~= node and w ~= '*' then redis.call('HSET', k, 'w', w and '*' or node) end
end

-- notify: tells every broker that the queues have ready tasks; from (when
-- given) names the broker that knows already.
local function notify(queues, from)
  for q, _ in pairs(queues) do redis.call('PUBLISH', P .. ':ready', (from or '') .. ' ' .. q) end
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
