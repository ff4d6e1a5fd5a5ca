-- progress: records a running task's progress, from its current worker.
-- ARGV: prefix, id, worker, progress (0..100), message.
-- Returns 1 if recorded, 0 if the task is not running on that worker, -1
-- if there is no such task.
local k = tkey(ARGV[2])
local s, wk = unpack(redis.call('HMGET', k, 's', 'wk'))
if not s then return -1 end
if s ~= 'running' or wk ~= ARGV[3] then return 0 end
redis.call('HSET', k, 'pg', ARGV[4], 'pm', ARGV[5])
return 1
