/* unit: the runner every Check suite shares: runs the suite (forking each
 * test, so a crash fails one test, not the suite) and turns the result into
 * the process's exit status. */
#ifndef TRIDENT_UNIT_H
#define TRIDENT_UNIT_H

#include <check.h>

/* unit_run: runs s and frees it; EXIT_SUCCESS if every test passed. */
int unit_run(Suite *s);

#endif
