# units.cmake: run by `cmake --install` (install(CODE) in CMakeLists.txt)
# to point the systemd units at the installed binaries.
#
# In:  TRIDENT_UNIT_SOURCES  the unit files of deploy/systemd/ (a list)
#      TRIDENT_UNIT_OUT      the directory to write the rewritten units to
#      TRIDENT_UNIT_BINDIR   CMAKE_INSTALL_BINDIR, absolute or relative to
#                            the prefix
#      CMAKE_INSTALL_PREFIX  the prefix being installed to (set by cmake)
#
# Every /usr/bin/trident* path (ExecStart=) becomes BINDIR/trident*; other
# paths (/bin/kill) stay. With the prefix /usr the units come out unchanged.
# DESTDIR is not part of the path: it only stages the files.
if(IS_ABSOLUTE "${TRIDENT_UNIT_BINDIR}")
  set(bindir "${TRIDENT_UNIT_BINDIR}")
else()
  set(bindir "${CMAKE_INSTALL_PREFIX}/${TRIDENT_UNIT_BINDIR}")
endif()
file(MAKE_DIRECTORY "${TRIDENT_UNIT_OUT}")
foreach(unit IN LISTS TRIDENT_UNIT_SOURCES)
  get_filename_component(name "${unit}" NAME)
  file(READ "${unit}" text)
  string(REGEX REPLACE "/usr/bin/(trident[-a-z]*)" "${bindir}/\\1" text "${text}")
  file(WRITE "${TRIDENT_UNIT_OUT}/${name}" "${text}")
endforeach()
