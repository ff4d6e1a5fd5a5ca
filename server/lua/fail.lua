-- fail: a worker reports a failed attempt. Only the worker running the
-- current attempt counts; anything else is a duplicate. A retryable failure
-- with attempts left waits an exponential backoff with jitter; otherwise
-- the task goes to its queue's dead set with the error.
-- ARGV: prefix, now, backoff_base_ms, backoff_cap_ms, n, then per failure:
-- id, worker, code, message, retryable (1/0), jitter (0..1).
-- Returns per failure {outcome, run_at}: "retry" with when, "dead",
-- "duplicate" (not this worker's current attempt), or "not_found".
local now = tonumber(ARGV[2])
local base, cap = tonumber(ARGV[3]), tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local out = {}
for i = 0, n - 1 do
  local b = 6 + i * 6
  local id, worker, code, msg = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local k = tkey(id)
  local s, q, wk, a, mr = unpack(redis.call('HMGET', k, 's', 'q', 'wk', 'a', 'mr'))
  if not s then
    out[i + 1] = { 'not_found', 0 }
  elseif s ~= 'running' or wk ~= worker then
    out[i + 1] = { 'duplicate', 0 }
  else
    unlink(id, q, s)
    redis.call('HSET', k, 'ec', code, 'em', msg)
    redis.call('HINCRBY', qkey(q, 'm'), 'fail', 1)
    a, mr = tonumber(a), tonumber(mr)
    if ARGV[b + 4] == '1' and a < mr + 1 then
      local delay = math.min(cap, base * 2 ^ (a - 1))
      delay = math.floor(delay * (0.5 + tonumber(ARGV[b + 5]) / 2))
      local due = now + delay
      redis.call('HSET', k, 's', 'retrying', 'ra', due)
      redis.call('HDEL', k, 'wk')
      redis.call('ZADD', SCHED, due, id)
      redis.call('HINCRBY', qkey(q, 'm'), 'nrt', 1)
      out[i + 1] = { 'retry', due }
    else
      finish(id, q, 'dead', now, 'bur')
      out[i + 1] = { 'dead', 0 }
    end
  end
end
return out
