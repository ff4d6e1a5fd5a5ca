-- cancel: a queued, scheduled or retrying task never runs; a running one is
-- cancelled at once and its worker named so that it can be told to stop.
-- ARGV: prefix, now, id.
-- Returns {outcome, state, worker}: outcome "queued", "running" or "final";
-- an empty array when there is no such task.
local now, id = tonumber(ARGV[2]), ARGV[3]
local k = tkey(id)
local s, q, wk = unpack(redis.call('HMGET', k, 's', 'q', 'wk'))
if not s then return {} end
if FINAL[s] then return { 'final', s, '' } end
unlink(id, q, s)
redis.call('HSET', k, 'ec', 'CANCELLED', 'em', 'cancelled by request')
finish(id, q, 'cancelled', now, 'cxl')
return { s == 'running' and 'running' or 'queued', 'cancelled', wk or '' }
