-- reap: running tasks whose lease ran out (their worker went silent) are
-- taken back as in requeue. Any broker may run it; it is idempotent.
-- ARGV: prefix, now, limit.
-- Returns the number of tasks taken back (limit means: run again).
local now = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', RUNNING, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local ready = {}
for _, id in ipairs(ids) do
  local s, q, wk = unpack(redis.call('HMGET', tkey(id), 's', 'q', 'wk'))
  if s == 'running' then
    if lost(id, q, now, 'lease of worker ' .. (wk or '?') .. ' expired') == 'queued' then
      ready[q] = true
    end
  else
    redis.call('ZREM', RUNNING, id)
  end
end
notify(ready)
return #ids
