-- requeue: a worker's connection closed: its running tasks go back to the
-- front of their queues at once (or to the dead set when no attempt is
-- left), attempt counted.
-- ARGV: prefix, now, worker, why, id...
-- Returns the number of tasks taken back.
local now = tonumber(ARGV[2])
local worker, why = ARGV[3], ARGV[4]
local ready = {}
local count = 0
for i = 5, #ARGV do
  local id = ARGV[i]
  local s, q, wk = unpack(redis.call('HMGET', tkey(id), 's', 'q', 'wk'))
  if s == 'running' and wk == worker then
    if lost(id, q, now, why) == 'queued' then ready[q] = true end
    count = count + 1
  end
end
notify(ready)
return count
