# Unit suites of worker/: one Check binary per module, run by ctest.
trident_unit_test(test_pool test_pool.c LIBS trident_worker PkgConfig::LIBEVENT Threads::Threads)
trident_unit_test(test_supervisor test_supervisor.c LIBS trident_worker trident_testsupport)
