-- ack: stores results. First writer wins: a task already final keeps its
-- result and the late one is dropped. A task that is not final is accepted
-- from any worker (one that reconnected after its lease ran out included).
-- ARGV: prefix, now, n, then per result: id, result.
-- Returns per result 1 (stored), 0 (dropped: the task is final) or -1 (no
-- such task).
local now = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local out = {}
for i = 0, n - 1 do
  local id, result = ARGV[4 + i * 2], ARGV[5 + i * 2]
  local k = tkey(id)
  local s, q = unpack(redis.call('HMGET', k, 's', 'q'))
  if not s then
    out[i + 1] = -1
  elseif FINAL[s] then
    out[i + 1] = 0
  else
    unlink(id, q, s)
    redis.call('HSET', k, 'r', result)
    redis.call('HDEL', k, 'ec', 'em')
    finish(id, q, 'succeeded', now, 'ok')
    out[i + 1] = 1
  end
end
return out
