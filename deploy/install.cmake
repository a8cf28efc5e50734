# install.cmake - run by `cmake --install` (and by cpack) to place the systemd
# units and the example config.  deploy/CMakeLists.txt sets TG_DEPLOY_SOURCE_DIR,
# TG_DEPLOY_BINARY_DIR, TG_SBINDIR and TG_SYSCONFDIR (GNUInstallDirs' relative
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
