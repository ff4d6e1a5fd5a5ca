-- stats: per-queue counts, for one queue or all known ones.
-- ARGV: prefix, queue ('' for all).
-- Returns a flat array, 10 fields per queue: name, ready, scheduled,
-- running, retrying, dead, succeeded, failed, cancelled, paused (1/0).
local qs
if ARGV[2] ~= '' then qs = { ARGV[2] } else qs = redis.call('SMEMBERS', QUEUES) end
table.sort(qs)
local out = {}
for _, q in ipairs(qs) do
  local m = redis.call('HMGET', qkey(q, 'm'), 'nsch', 'nrun', 'nrt', 'ok', 'fail', 'cxl', 'paused')
  local row = { q, ready_len(q), tonumber(m[1] or 0), tonumber(m[2] or 0),
                tonumber(m[3] or 0), redis.call('ZCARD', qkey(q, 'dead')), tonumber(m[4] or 0),
                tonumber(m[5] or 0), tonumber(m[6] or 0), m[7] == '1' and 1 or 0 }
  for _, v in ipairs(row) do out[#out + 1] = v end
end
return out
