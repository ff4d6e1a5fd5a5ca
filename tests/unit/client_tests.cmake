# Unit suites of client/: its pure modules, one Check binary each, run by
# ctest (libtrident's connection code is covered by the integration test
# tests/integration/test_cli.py).
trident_unit_test(test_mpjson test_mpjson.c LIBS trident_mpjson)
trident_unit_test(test_fmt test_fmt.c LIBS trident_fmt)
