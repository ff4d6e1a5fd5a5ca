-- admin: queue administration, one operation per call.
-- ARGV: prefix, now, op, queue, then per op:
--   pause | resume                      -> 1
--   purge: ready and scheduled/retrying tasks are deleted -> count
--   dead_list offset limit              -> {total, id, fields..., id, fields...}
--   dead_retry id... (none: all)        -> count requeued with attempts reset
--   dead_purge id... (none: all)        -> count deleted
local now, op, q = tonumber(ARGV[2]), ARGV[3], ARGV[4]
local m = qkey(q, 'm')
if op == 'pause' then
  redis.call('SADD', QUEUES, q)
  redis.call('HSET', m, 'paused', '1')
  return 1
elseif op == 'resume' then
  redis.call('HDEL', m, 'paused')
  notify({ [q] = true })
  return 1
elseif op == 'purge' then
  local count = 0
  for _, pr in ipairs(redis.call('ZRANGE', qkey(q, 'prios'), 0, -1)) do
    for _, id in ipairs(redis.call('LRANGE', rkey(q, pr), 0, -1)) do
      redis.call('DEL', tkey(id))
      count = count + 1
    end
    redis.call('DEL', rkey(q, pr))
  end
  redis.call('DEL', qkey(q, 'prios'))
  for _, id in ipairs(redis.call('ZRANGE', SCHED, 0, -1)) do
    local tq = redis.call('HGET', tkey(id), 'q')
    if tq == q or not tq then
      redis.call('ZREM', SCHED, id)
      if tq then
        redis.call('DEL', tkey(id))
        count = count + 1
      end
    end
  end
  redis.call('HSET', m, 'nsch', 0, 'nrt', 0)
  return count
elseif op == 'dead_list' then
  local dead = qkey(q, 'dead')
  local off, lim = tonumber(ARGV[5]), tonumber(ARGV[6])
  local out = { redis.call('ZCARD', dead) }
  if lim > 0 then
    for _, id in ipairs(redis.call('ZRANGE', dead, off, off + lim - 1)) do
      out[#out + 1] = id
      out[#out + 1] = read_view(tkey(id))
    end
  end
  return out
elseif op == 'dead_retry' or op == 'dead_purge' then
  local dead = qkey(q, 'dead')
  local ids = {}
  for i = 5, #ARGV do ids[#ids + 1] = ARGV[i] end
  if #ids == 0 then ids = redis.call('ZRANGE', dead, 0, -1) end
  local count = 0
  for _, id in ipairs(ids) do
    if redis.call('ZREM', dead, id) == 1 then
      count = count + 1
      local k = tkey(id)
      if op == 'dead_purge' then
        redis.call('DEL', k)
      else
        redis.call('HSET', k, 's', 'queued', 'a', 0)
        redis.call('HDEL', k, 'f', 'r')
        push_ready(q, id, tonumber(redis.call('HGET', k, 'pr')), false)
      end
    end
  end
  if op == 'dead_retry' and count > 0 then notify({ [q] = true }) end
  return count
end
return redis.error_reply('unknown admin op ' .. tostring(op))
