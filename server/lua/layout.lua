-- layout: run on every connect, before the broker serves. {P}:layout holds
-- the version of the key layout (STORAGE.md); data of an older layout is
-- brought up to this one, data of a newer one is refused.
-- ARGV: prefix. Returns the number of ready tasks moved, or an error reply
-- starting with LAYOUT.
local LAYOUT = 3
local found = tonumber(redis.call('GET', P .. ':layout') or '1')
if found > LAYOUT then
  return redis.error_reply('LAYOUT the data in Redis has key layout ' .. found ..
                           '; this tridentd knows layouts up to ' .. LAYOUT)
end
-- Layout 1 kept a queue's ready tasks in one sorted set, {P}:q:<q>:ready,
-- in ready order. Each task moves, in that order, to the back of its
-- priority's list. Looked for on every connect, not only once: a broker of
-- layout 1 still running (which it should not) would have added more.
local moved = 0
for _, q in ipairs(redis.call('SMEMBERS', QUEUES)) do
  local old = qkey(q, 'ready')
  if redis.call('EXISTS', old) == 1 then
    for _, id in ipairs(redis.call('ZRANGE', old, 0, -1)) do
      local pr = redis.call('HGET', tkey(id), 'pr')
      if pr then
        push_ready(q, id, tonumber(pr), false)
        moved = moved + 1
      end
    end
    redis.call('DEL', old)
    redis.call('HDEL', qkey(q, 'm'), 'seq', 'front')
  end
end
if found < LAYOUT then redis.call('SET', P .. ':layout', LAYOUT) end
return moved
