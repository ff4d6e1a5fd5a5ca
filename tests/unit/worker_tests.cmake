# Unit suites of worker/: one Check binary per module, run by ctest.
trident_unit_test(test_pool test_pool.c LIBS trident_worker PkgConfig::LIBEVENT Threads::Threads)
trident_unit_test(test_supervisor test_supervisor.c LIBS trident_worker trident_testsupport)
trident_unit_test(test_exech test_exech.c LIBS trident_worker trident_testsupport PkgConfig::LIBEVENT)
target_compile_definitions(test_exech PRIVATE TRIDENT_EXAMPLES_DIR="${PROJECT_SOURCE_DIR}/examples")
