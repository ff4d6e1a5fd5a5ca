-- submit: stores new tasks, request by request, each all or nothing.
-- ARGV: prefix, now, node (the broker's id: for the ready message, and the
-- waiter of tasks with waiter 1), ngroups,
-- then per group: ntasks, then per task 12
-- fields: id, queue, name, payload, priority, due (0 = ready now),
-- max_retries, timeout, result_ttl, waiter (1 = a broker waits for it),
-- max_length (0 = unlimited), fresh (1 = the broker just made the id, so it
-- cannot exist yet: no duplicate check).
-- Returns per group: an array of 0 (stored), 1 (duplicate: the id exists)
-- or 2 (duplicate, and already final) per task (for a group of one task
-- that number alone: no table per single submission), or the string
-- "QUEUE_FULL <queue>" when storing it would take a queue past its
-- max_length.
-- Hot path: one HSET per task. The ready lists and the counters are
-- written once per queue at the end of the call, so the room check counts
-- what this call added before (added).
local F = 12
local now = tonumber(ARGV[2])
local ngroups = tonumber(ARGV[4])
local at = 5
local out = {}
local known = {}  -- queues already added to the queue set by this call
local added = {}  -- queue -> tasks this call added (ready and scheduled)
local readyq = {} -- queue -> priority -> ids to make ready, in order
local nsch = {}   -- queue -> tasks scheduled
local held = {}   -- queue -> tasks it held before this call (read once)
-- The fields of one task hash, filled in per task: one table for the
-- call, not one per task (most requests submit one task, and tables cost).
-- Numbers stay the strings the broker formatted ('0', digits, a sign): Lua
-- converts numbers to and from strings slowly. Slots 21-24 hold w and ra
-- when set.
local f = { 'q', '', 'n', '', 'p', '', 'pr', '', 'a', '0', 'mr', '', 'to', '', 'ttl', '',
            'c', ARGV[2], 's', '', 'w', '', 'ra', '' }
for g = 1, ngroups do
  local n = tonumber(ARGV[at])
  at = at + 1
  -- Pass one: duplicates and room, before anything is written. The tables
  -- are made only when needed.
  local dup, seen, adding, full = nil, nil, nil, nil
  for i = 0, n - 1 do
    local b = at + i * F
    local id, q, maxlen = ARGV[b], ARGV[b + 1], ARGV[b + 10]
    if (seen and seen[id]) or (ARGV[b + 11] ~= '1' and redis.call('EXISTS', tkey(id)) == 1) then
      dup = dup or {}
      dup[i] = true
    else
      if n > 1 then
        seen = seen or {}
        seen[id] = true
      end
      if maxlen ~= '0' then
        adding = adding or {}
        adding[q] = (adding[q] or 0) + 1
        local len = held[q]
        if not len then
          local m = redis.call('HMGET', qkey(q, 'm'), 'nsch', 'nrt')
          len = ready_len(q) + tonumber(m[1] or 0) + tonumber(m[2] or 0)
          held[q] = len
        end
        if len + (added[q] or 0) + adding[q] > tonumber(maxlen) then full = q end
      end
    end
  end
  if full then
    out[g] = 'QUEUE_FULL ' .. full
  else
    local res = n > 1 and {} or nil
    local code
    for i = 0, n - 1 do
      local b = at + i * F
      if dup and dup[i] then
        code = 1
        local s = redis.call('HGET', tkey(ARGV[b]), 's')
        if s and FINAL[s] then
          code = 2
        elseif ARGV[b + 9] == '1' then
          add_waiter(tkey(ARGV[b]), ARGV[3])
        end
      else
        local id, q, due, prio = ARGV[b], ARGV[b + 1], ARGV[b + 5], ARGV[b + 4]
        local later = due ~= '0' and tonumber(due) > now
        f[2], f[4], f[6], f[8] = q, ARGV[b + 2], ARGV[b + 3], prio
        f[12], f[14], f[16] = ARGV[b + 6], ARGV[b + 7], ARGV[b + 8]
        f[20] = later and 'scheduled' or 'queued'
        local nf = 20
        if ARGV[b + 9] == '1' then
          f[21], f[22] = 'w', ARGV[3]
          nf = 22
        end
        if later then
          f[nf + 1], f[nf + 2] = 'ra', due
          nf = nf + 2
        end
        redis.call('HSET', tkey(id), unpack(f, 1, nf))
        if later then
          redis.call('ZADD', SCHED, due, id)
          nsch[q] = (nsch[q] or 0) + 1
        else
          local byprio = readyq[q]
          if not byprio then byprio = {}; readyq[q] = byprio end
          local r = byprio[prio]
          if not r then r = {}; byprio[prio] = r end
          r[#r + 1] = id
        end
        added[q] = (added[q] or 0) + 1
        if not known[q] then
          redis.call('SADD', QUEUES, q)
          known[q] = true
        end
        code = 0
      end
      if res then res[i + 1] = code end
    end
    out[g] = res or code
  end
  at = at + n * F
end
-- The ready lists, one push per queue and priority.
for q, byprio in pairs(readyq) do
  for prio, ids in pairs(byprio) do
    call_chunked('RPUSH', rkey(q, prio), ids)
    redis.call('ZADD', qkey(q, 'prios'), -tonumber(prio), prio)
  end
end
add_counts(nsch, 'nsch')
-- This broker's idle workers fetch right behind this call (tasks_flush):
-- the message is for the other brokers.
notify(readyq, ARGV[3])
return out
