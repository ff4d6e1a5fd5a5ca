-- watch: reads a task for GET; with ARGV[3] = 1 also marks it watched, so
-- that the script that finishes it publishes on P:done. Both in one step:
-- a task cannot finish between the read and the mark.
-- ARGV: prefix, id, watch (1/0).
-- Returns the task's fields as HMGET gives them (see store.h), or {} when
-- there is no such task.
local k = tkey(ARGV[2])
local s = redis.call('HGET', k, 's')
if not s then return {} end
if ARGV[3] == '1' and not FINAL[s] then redis.call('HSET', k, 'w', '1') end
return redis.call('HMGET', k, 'q', 'n', 's', 'a', 'mr', 'pr', 'c', 'ra', 'st', 'f', 'pg', 'pm',
                  'r', 'ec', 'em')
