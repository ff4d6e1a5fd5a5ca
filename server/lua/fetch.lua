-- fetch: hands ready tasks to workers, marking them running under a lease.
-- ARGV: prefix, now, lease_ms, nreq, then per request: worker, want,
-- nqueues, queue... (in the order to serve them).
-- Returns per request a flat array, 8 fields per task: id, queue, name,
-- payload, attempt, timeout, priority, created_at (all strings).
-- Hot path: per task one HMGET and one HSET; the running set and the
-- counters are written once per call.
local now = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local nreq = tonumber(ARGV[4])
local at = 5
local until_ = tostring(now + lease) -- one number formatted per call, not per task
local out = {}
local running = {}  -- score, id pairs for the running set
local next_a = {}   -- attempt -> the next one, as strings: Lua formats numbers slowly
local nrun = {}     -- queue -> tasks started
for r = 1, nreq do
  local worker, want, nq = ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  local got = {}
  local ngot = 0
  for j = 1, nq do
    local q = ARGV[at + 2 + j]
    if want - ngot > 0 and redis.call('HGET', qkey(q, 'm'), 'paused') ~= '1' then
      local popped = pop_ready(q, want - ngot)
      for i = 1, #popped do
        local id = popped[i]
        local k = tkey(id)
        local t = redis.call('HMGET', k, 'n', 'p', 'a', 'to', 'pr', 'c')
        if t[1] then
          local a = next_a[t[3]]
          if not a then
            a = tostring(tonumber(t[3]) + 1)
            next_a[t[3]] = a
          end
          redis.call('HSET', k, 's', 'running', 'a', a, 'st', ARGV[2], 'wk', worker)
          running[#running + 1] = until_
          running[#running + 1] = id
          nrun[q] = (nrun[q] or 0) + 1
          local n = #got
          got[n + 1], got[n + 2], got[n + 3], got[n + 4] = id, q, t[1], t[2]
          got[n + 5], got[n + 6], got[n + 7], got[n + 8] = a, t[4], t[5], t[6]
          ngot = ngot + 1
        end
      end
    end
  end
  out[r] = got
  at = at + 3 + nq
end
call_chunked('ZADD', RUNNING, running)
add_counts(nrun, 'nrun')
return out
