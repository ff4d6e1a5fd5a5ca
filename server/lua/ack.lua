-- ack: stores results. First writer wins: a task already final keeps its
-- result and the late one is dropped. A task that is not final is accepted
-- from any worker (one that reconnected after its lease ran out included).
-- ARGV: prefix, now, node (this broker's id), n, then per result: id, result.
-- Returns per result 1 (stored), 0 (dropped: the task is final) or -1 (no
-- such task); for a stored task someone waits for, instead its attempt
-- (a string, not an integer): with the time and the result, which the
-- broker has, that is all a RESULT push needs, so it answers without
-- reading the task (and reads it for a GET waiter). A task kept for no
-- time (result_ttl 0) is deleted here (unless someone waits for it through
-- another broker: then it stays WAITED ms for them, common.lua), so for it
-- the whole view comes back instead (the fields of watch.lua).
-- Hot path: per task one HMGET and one HSET; the running set, the lists of
-- tasks to expire, the counters and the P:done message go once per call.
local now = tonumber(ARGV[2])
local node = ARGV[3]
local n = tonumber(ARGV[4])
local out = {}
local second = {}           -- ttl -> the second its tasks are due to go
local expiring = {}         -- that second -> ids
local stopped = {}          -- ids to take out of the running set
local nrun, nok = {}, {}    -- queue -> running tasks finished / succeeded
local done = {}             -- ids someone waits for
for i = 0, n - 1 do
  local id, result = ARGV[5 + i * 2], ARGV[6 + i * 2]
  local k = tkey(id)
  local v = redis.call('HMGET', k, 's', 'q', 'w', 'ttl', 'a', 'ec')
  local s, q = v[1], v[2]
  if not s then
    out[i + 1] = -1
  elseif FINAL[s] then
    out[i + 1] = 0
  else
    -- finish() inlined and batched: this is the hot path.
    if s == 'running' then
      stopped[#stopped + 1] = id
      nrun[q] = (nrun[q] or 0) - 1
    else
      unlink(id, q, s)
    end
    redis.call('HSET', k, 's', 'succeeded', 'f', ARGV[2], 'r', result)
    -- An earlier attempt's error goes; wk (the worker) means nothing once
    -- final and is left alone.
    if v[6] then redis.call('HDEL', k, 'ec', 'em') end
    nok[q] = (nok[q] or 0) + 1
    out[i + 1] = 1
    if v[3] then
      -- This broker answers its own waiters from the reply: the message is
      -- for the others.
      if v[3] ~= node then done[#done + 1] = id end
      out[i + 1] = v[5] or '0'
      if v[4] == '0' then
        out[i + 1] = read_view(k)
      end
    end
    -- ttl is kept as the broker formatted it: '0' or digits.
    local ttl = kept_ttl(v[4], v[3], node)
    if ttl ~= '0' then
      local sec = second[ttl]
      if not sec then
        sec = expire_bucket(now, ttl)
        second[ttl] = sec
      end
      local e = expiring[sec] -- two ttls may share a second
      if not e then
        e = {}
        expiring[sec] = e
      end
      e[#e + 1] = id
    else
      redis.call('DEL', k)
    end
  end
end
call_chunked('ZREM', RUNNING, stopped)
for sec, ids in pairs(expiring) do expire_later(sec, ids) end
add_counts(nrun, 'nrun')
add_counts(nok, 'ok')
if #done > 0 then redis.call('PUBLISH', P .. ':done', table.concat(done, ' ')) end
return out
