-- layout: run on every connect, before the broker serves. {P}:layout holds
-- the version of the key layout (STORAGE.md); data of an older layout is
-- brought up to this one, data of a newer one is refused.
-- ARGV: prefix. Returns 'OK', or an error reply starting with LAYOUT.
local LAYOUT = 2
local found = tonumber(redis.call('GET', P .. ':layout') or '1')
if found > LAYOUT then
  return redis.error_reply('LAYOUT the data in Redis has key layout ' .. found ..
                           '; this tridentd knows layouts up to ' .. LAYOUT)
end
if found < 2 then
  -- Layout 1 kept a queue's ready tasks in one sorted set, {P}:q:<q>:ready,
  -- in ready order. Each task moves, in that order, to the back of its
  -- priority's list.
  for _, q in ipairs(redis.call('SMEMBERS', QUEUES)) do
    local old = qkey(q, 'ready')
    for _, id in ipairs(redis.call('ZRANGE', old, 0, -1)) do
      local pr = redis.call('HGET', tkey(id), 'pr')
      if pr then push_ready(q, id, tonumber(pr), false) end
    end
    redis.call('DEL', old)
    redis.call('HDEL', qkey(q, 'm'), 'seq', 'front')
  end
  redis.call('SET', P .. ':layout', LAYOUT)
end
return redis.status_reply('OK')
