-- ack: stores results. First writer wins: a task already final keeps its
-- result and the late one is dropped. A task that is not final is accepted
-- from any worker (one that reconnected after its lease ran out included).
-- ARGV: prefix, now, node (this broker's id), n, then per result: id, result.
-- Returns per result 1 (stored), 0 (dropped: the task is final) or -1 (no
-- such task); for a stored task someone waits for, instead the task's view
-- (the fields of watch.lua), so the broker can answer without reading it.
-- Views are only sent for watched tasks: most results have no waiter.
-- Hot path: per task one HMGET, one HSET and the expiry; the running set,
-- the counters and the P:done message go once per call.
local node = ARGV[3]
local n = tonumber(ARGV[4])
local out = {}
local stopped = {}          -- ids to take out of the running set
local nrun, nok = {}, {}    -- queue -> running tasks finished / succeeded
local done = {}             -- ids someone waits for
for i = 0, n - 1 do
  local id, result = ARGV[5 + i * 2], ARGV[6 + i * 2]
  local k = tkey(id)
  local v = redis.call('HMGET', k, 's', 'q', 'w', 'ttl', 'n', 'a', 'mr', 'pr', 'c', 'ra', 'st',
                       'pg', 'pm', 'ec')
  local s, q = v[1], v[2]
  if not s then
    out[i + 1] = -1
  elseif FINAL[s] then
    out[i + 1] = 0
  else
    -- finish() inlined and batched: this is the hot path.
    local ra = v[10]
    if s == 'running' then
      stopped[#stopped + 1] = id
      nrun[q] = (nrun[q] or 0) - 1
    else
      unlink(id, q, s) -- drops ra
      ra = false
    end
    redis.call('HSET', k, 's', 'succeeded', 'f', ARGV[2], 'r', result)
    -- An earlier attempt's error goes; wk (the worker) means nothing once
    -- final and is left alone.
    if v[14] then redis.call('HDEL', k, 'ec', 'em') end
    nok[q] = (nok[q] or 0) + 1
    out[i + 1] = 1
    if v[3] then
      -- This broker answers its own waiters from the view: the message is
      -- for the others.
      if v[3] ~= node then done[#done + 1] = id end
      -- The view as watch.lua reads it, after the writes above.
      out[i + 1] = { q, v[5], 'succeeded', v[6], v[7], v[8], v[9], ra, v[11], ARGV[2],
                     v[12], v[13], result, false, false }
    end
    local ttl = tonumber(v[4])
    if ttl > 0 then redis.call('PEXPIRE', k, ttl) else redis.call('DEL', k) end
  end
end
call_chunked('ZREM', RUNNING, stopped)
add_counts(nrun, 'nrun')
add_counts(nok, 'ok')
if #done > 0 then redis.call('PUBLISH', P .. ':done', table.concat(done, ' ')) end
return out
