# Unit suites of common/: one Check binary per module, run by ctest. Suites
# that need temporary directories take them from trident_testsupport (which
# brings trident_common along).
find_package(Threads REQUIRED)

trident_unit_test(test_mem test_mem.c LIBS trident_common)
trident_unit_test(test_buf test_buf.c LIBS trident_common)
trident_unit_test(test_log test_log.c LIBS trident_testsupport Threads::Threads)
trident_unit_test(test_clock test_clock.c LIBS trident_common)
trident_unit_test(test_id test_id.c LIBS trident_common Threads::Threads)
trident_unit_test(test_config test_config.c LIBS trident_testsupport)
trident_unit_test(test_sig test_sig.c LIBS trident_common Threads::Threads)
trident_unit_test(test_net test_net.c LIBS trident_testsupport)
trident_unit_test(test_hmap test_hmap.c LIBS trident_common)
trident_unit_test(test_sha256 test_sha256.c LIBS trident_testsupport)
