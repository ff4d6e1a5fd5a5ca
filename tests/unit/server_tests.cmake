# Unit suites of server/: one Check binary per module, run by ctest.
# test_redis_proc runs the real redis-server (/usr/bin/redis-server or PATH).
trident_unit_test(test_redis_proc test_redis_proc.c
  LIBS trident_server trident_testsupport PkgConfig::LIBEVENT PkgConfig::HIREDIS)
trident_unit_test(test_rargs test_rargs.c LIBS trident_server PkgConfig::HIREDIS)
