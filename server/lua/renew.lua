-- renew: a worker's heartbeat extends the leases of the tasks it runs.
-- ARGV: prefix, now, lease_ms, worker, id...
-- Returns the number of leases renewed.
local now, lease, worker = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local count = 0
for i = 5, #ARGV do
  local id = ARGV[i]
  local s, wk = unpack(redis.call('HMGET', tkey(id), 's', 'wk'))
  if s == 'running' and wk == worker then
    redis.call('ZADD', RUNNING, 'XX', now + lease, id)
    count = count + 1
  end
end
return count
