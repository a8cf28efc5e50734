# install.cmake - run by `cmake --install` (and by cpack) to place the systemd
# units, the example config, and the man pages and changelog compressed.
# deploy/CMakeLists.txt sets TG_DEPLOY_SOURCE_DIR, TG_DEPLOY_BINARY_DIR,
# TG_SBINDIR, TG_SYSCONFDIR, TG_MANDIR and TG_DOCDIR (GNUInstallDirs' relative
# or absolute values) before it.
#
# The example config goes to the sysconfdir of the prefix in force now, by
# GNUInstallDirs' rule: /etc for the prefix /usr, /etc/opt/P for /opt/P,
# PREFIX/etc otherwise.  Doing this at install time, rather than with
# CMAKE_INSTALL_FULL_SYSCONFDIR (fixed at configure time, /usr/local/etc by
# default), is what puts it in /etc both with `cmake --install --prefix /usr`
# and in the .deb.
#
# The units name /usr/sbin/trackgated; under another prefix they are rewritten
# to name PREFIX/sbin/trackgated, so that a unit under /usr/local/lib/systemd/
# (which systemd also reads) starts the binary installed beside it.  They
# always read /etc/trackgate/: that is where the admin keeps the config.

set(_prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/+$" "" _prefix "${_prefix}")

if(IS_ABSOLUTE "${TG_SYSCONFDIR}")
  set(_etc "${TG_SYSCONFDIR}")
elseif(_prefix STREQUAL "/usr" OR _prefix STREQUAL "")
  set(_etc "/${TG_SYSCONFDIR}")
elseif(_prefix MATCHES "^/opt/(.+)$")
  set(_etc "/${TG_SYSCONFDIR}/opt/${CMAKE_MATCH_1}")
else()
  set(_etc "${_prefix}/${TG_SYSCONFDIR}")
endif()

if(IS_ABSOLUTE "${TG_SBINDIR}")
  set(_sbin "${TG_SBINDIR}")
else()
  set(_sbin "${_prefix}/${TG_SBINDIR}")
endif()

file(INSTALL "${TG_DEPLOY_SOURCE_DIR}/trackgated.conf.example"
     DESTINATION "${_etc}/trackgate"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# A folder per destination: installs into two DESTDIRs may run at once.
string(MD5 _dest "$ENV{DESTDIR}|${_prefix}")
set(_units "${TG_DEPLOY_BINARY_DIR}/units-${_dest}")
file(MAKE_DIRECTORY "${_units}")
foreach(unit trackgated.service trackgated@.service)
  file(READ "${TG_DEPLOY_SOURCE_DIR}/${unit}" _text)
  if(NOT _sbin STREQUAL "/usr/sbin")
    string(REPLACE "/usr/sbin/trackgated " "${_sbin}/trackgated " _text "${_text}")
  endif()
  file(WRITE "${_units}/${unit}" "${_text}")
  file(INSTALL "${_units}/${unit}"
       DESTINATION "${_prefix}/lib/systemd/system"
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endforeach()

# Debian policy 12.3 and 12.7: man pages and the changelog are compressed with
# gzip -9n (no file name, no time stamp: reproducible).
find_program(_gzip gzip REQUIRED)
foreach(_page trackgated.8 trackgate-watch.1 trackgate-token.1 changelog)
  execute_process(COMMAND "${_gzip}" -9n -c "${TG_DEPLOY_SOURCE_DIR}/${_page}"
                  OUTPUT_FILE "${_units}/${_page}.gz" RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "gzip -9n ${_page}: ${_rc}")
  endif()
  if(_page STREQUAL changelog)
    if(IS_ABSOLUTE "${TG_DOCDIR}")
      set(_to "${TG_DOCDIR}")
    else()
      set(_to "${_prefix}/${TG_DOCDIR}")
    endif()
  else()
    string(REGEX REPLACE "^.*\\.([0-9])$" "\\1" _section "${_page}")
    if(IS_ABSOLUTE "${TG_MANDIR}")
      set(_to "${TG_MANDIR}/man${_section}")
    else()
      set(_to "${_prefix}/${TG_MANDIR}/man${_section}")
    endif()
  endif()
  file(INSTALL "${_units}/${_page}.gz" DESTINATION "${_to}"
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endforeach()
