-- submit: stores new tasks, request by request, each all or nothing.
-- ARGV: prefix, now, ngroups, then per group: ntasks, then per task 11
-- fields: id, queue, name, payload, priority, due (0 = ready now),
-- max_retries, timeout, result_ttl, waiter (1 = a broker waits for it),
-- max_length (0 = unlimited).
-- Returns per group: an array of 0 (stored), 1 (duplicate: the id exists)
-- or 2 (duplicate, and already final) per task, or the string "QUEUE_FULL <queue>" when storing it would take
-- a queue past its max_length.
local now = tonumber(ARGV[2])
local ngroups = tonumber(ARGV[3])
local at = 4
local out = {}
local ready = {}
local known = {}  -- queues already added to the queue set by this call
for g = 1, ngroups do
  local n = tonumber(ARGV[at])
  at = at + 1
  -- Pass one: duplicates and room, before anything is written.
  local dup, adding, full = {}, {}, nil
  local seen = {}
  for i = 0, n - 1 do
    local b = at + i * 11
    local id, q, maxlen = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 10])
    if seen[id] or redis.call('EXISTS', tkey(id)) == 1 then
      dup[i] = true
    else
      seen[id] = true
      adding[q] = (adding[q] or 0) + 1
      if maxlen > 0 then
        local m = redis.call('HMGET', qkey(q, 'm'), 'nsch', 'nrt')
        local len = redis.call('ZCARD', qkey(q, 'ready')) + tonumber(m[1] or 0) + tonumber(m[2] or 0)
        if len + adding[q] > maxlen then full = q end
      end
    end
  end
  if full then
    out[g] = 'QUEUE_FULL ' .. full
  else
    local res = {}
    for i = 0, n - 1 do
      local b = at + i * 11
      if dup[i] then
        res[i + 1] = 1
        local s = redis.call('HGET', tkey(ARGV[b]), 's')
        if s and FINAL[s] then
          res[i + 1] = 2
        elseif ARGV[b + 9] == '1' then
          redis.call('HSET', tkey(ARGV[b]), 'w', '1')
        end
      else
        local id, q, due, prio = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 5]), tonumber(ARGV[b + 4])
        local k = tkey(id)
        local scheduled = due > now
        redis.call('HSET', k, 'q', q, 'n', ARGV[b + 2], 'p', ARGV[b + 3], 'pr', prio,
                   'a', 0, 'mr', ARGV[b + 6], 'to', ARGV[b + 7], 'ttl', ARGV[b + 8], 'c', now,
                   's', scheduled and 'scheduled' or 'queued')
        if ARGV[b + 9] == '1' then redis.call('HSET', k, 'w', '1') end
        if not known[q] then
          redis.call('SADD', QUEUES, q)
          known[q] = true
        end
        if scheduled then
          redis.call('HSET', k, 'ra', due)
          redis.call('ZADD', SCHED, due, id)
          redis.call('HINCRBY', qkey(q, 'm'), 'nsch', 1)
        else
          push_ready(q, id, prio, false)
          ready[q] = true
        end
        res[i + 1] = 0
      end
    end
    out[g] = res
  end
  at = at + n * 11
end
notify(ready)
return out
