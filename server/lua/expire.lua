-- expire: deletes finished tasks whose result ttl has run out, from the
-- lists of common.lua's expire_later, oldest second first. Any broker may
-- run it on its timer; it is idempotent. A listed task is deleted only if
-- it is still final (not dead) and its time is up: one deleted early and
-- submitted again under its id is left alone.
-- ARGV: prefix, now, limit (of ids to take off the lists).
-- Returns {more, deleted}: more is 1 when it stopped at a limit (run
-- again), deleted the number of tasks deleted.
local SECONDS = 16 -- due seconds read per call
local now, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local taken, deleted = 0, 0
local due = redis.call('ZRANGEBYSCORE', EXPIRING, '-inf', math.floor(now / 1000),
                       'LIMIT', 0, SECONDS)
for _, second in ipairs(due) do
  local list = EXPIRING .. ':' .. second
  local ids = redis.call('LPOP', list, limit - taken) or {}
  for _, id in ipairs(ids) do
    local k = tkey(id)
    local s, f, ttl = unpack(redis.call('HMGET', k, 's', 'f', 'ttl'))
    if ttl == '0' then ttl = WAITED end -- listed only when someone waited
    if s and s ~= 'dead' and FINAL[s] and f and ttl and tonumber(f) + tonumber(ttl) <= now then
      redis.call('DEL', k)
      deleted = deleted + 1
    end
  end
  taken = taken + #ids
  if taken >= limit then break end
  redis.call('ZREM', EXPIRING, second) -- its list is empty now
end
return { (taken >= limit or #due == SECONDS) and 1 or 0, deleted }
