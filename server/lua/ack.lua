-- ack: stores results. First writer wins: a task already final keeps its
-- result and the late one is dropped. A task that is not final is accepted
-- from any worker (one that reconnected after its lease ran out included).
-- ARGV: prefix, now, n, then per result: id, result.
-- Returns per result 1 (stored), 0 (dropped: the task is final) or -1 (no
-- such task); for a stored task someone waits for, instead the task's view
-- (the fields of watch.lua), so the broker can answer without reading it.
-- Views are only sent for watched tasks: most results have no waiter.
local now = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local out = {}
for i = 0, n - 1 do
  local id, result = ARGV[4 + i * 2], ARGV[5 + i * 2]
  local k = tkey(id)
  local s, q, w, ttl = unpack(redis.call('HMGET', k, 's', 'q', 'w', 'ttl'))
  if not s then
    out[i + 1] = -1
  elseif FINAL[s] then
    out[i + 1] = 0
  else
    -- finish() inlined: this is the hot path, one command saved is many.
    unlink(id, q, s)
    redis.call('HSET', k, 's', 'succeeded', 'f', now, 'r', result)
    redis.call('HDEL', k, 'wk', 'ec', 'em')
    redis.call('HINCRBY', qkey(q, 'm'), 'ok', 1)
    out[i + 1] = 1
    if w == '1' then
      redis.call('PUBLISH', P .. ':done', id)
      out[i + 1] = redis.call('HMGET', k, 'q', 'n', 's', 'a', 'mr', 'pr', 'c', 'ra', 'st', 'f',
                              'pg', 'pm', 'r', 'ec', 'em')
    end
    ttl = tonumber(ttl)
    if ttl > 0 then redis.call('PEXPIRE', k, ttl) else redis.call('DEL', k) end
  end
end
return out
