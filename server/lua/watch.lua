-- watch: reads a task for GET; with ARGV[3] (a broker's id) also marks it
-- watched by that broker (add_waiter), so that the script that finishes it
-- publishes on P:done. Both in one step: a task cannot finish between the
-- read and the mark.
-- ARGV: prefix, id, watcher ('' for none).
-- Returns the task's fields as HMGET gives them (see store.h), or {} when
-- there is no such task.
local k = tkey(ARGV[2])
local s = redis.call('HGET', k, 's')
if not s then return {} end
if ARGV[3] ~= '' and not FINAL[s] then add_waiter(k, ARGV[3]) end
return read_view(k)
