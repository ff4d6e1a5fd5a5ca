-- promote: scheduled and retrying tasks whose time has come become ready.
-- Any broker may run it on its timer; it is idempotent.
-- ARGV: prefix, now, limit.
-- Returns the number moved (limit means: run again).
local now = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', SCHED, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local ready = {}
for _, id in ipairs(ids) do
  local k = tkey(id)
  local s, q, prio = unpack(redis.call('HMGET', k, 's', 'q', 'pr'))
  if s == 'scheduled' or s == 'retrying' then
    unlink(id, q, s)
    redis.call('HSET', k, 's', 'queued')
    push_ready(q, id, tonumber(prio), false)
    ready[q] = true
  else
    redis.call('ZREM', SCHED, id)
  end
end
notify(ready)
return #ids
