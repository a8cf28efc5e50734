# packaging.cmake - the project's docs for `cmake --install`, and CPack's .deb.
#
# Included at the end of the top-level CMakeLists.txt.  What installs where
# (FHS, prefix /usr in the .deb):
#   sbin/trackgated, bin/trackgate-watch          gateway/, tools/
#   lib/systemd/system/trackgated{,@}.service     deploy/ (install.cmake)
#   /etc/trackgate/trackgated.conf.example        deploy/ (install.cmake)
#   share/man/man{1,8}/*.gz (gzip -9n)            deploy/ (install.cmake)
#   share/doc/trackgate/                          here and deploy/ (copyright,
#                                                 changelog.gz: Debian's)
#   share/lintian/overrides/trackgate             deploy/lintian-overrides
#
#   cpack -G DEB --config BUILD/CPackConfig.cmake   # trackgate_VERSION_ARCH.deb
#
# The .deb declares its run-time libraries through dpkg-shlibdeps (dpkg-dev)
# when it is there, else by a list of Debian 12's package names, and always
# libwebsockets-evlib-uv: libwebsockets loads it as a plugin, so no
# NEEDED entry names it.  It ships the units disabled (deploy/debian/).
# `lintian` reports no error on it (tests/packaging/test_lintian.sh): the
# binaries are always stripped in the .deb (the build tree keeps its own).

install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES adapters/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME README.adapters.md)
install(FILES proto/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME README.proto.md)
install(DIRECTORY proto/schema/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/schema
        FILES_MATCHING PATTERN "*.json")

# A build tree configured before the project named its address keeps the
# old placeholder (lintian: bogus-mail-host) in its cache: drop it.
if(TRACKGATE_PACKAGE_MAINTAINER STREQUAL "trackgate maintainers <trackgate@localhost>")
  unset(TRACKGATE_PACKAGE_MAINTAINER CACHE)
endif()
set(TRACKGATE_PACKAGE_MAINTAINER "trackgate maintainers <maintainers@trackgate.invalid>" CACHE STRING
    "Maintainer field of the .deb")

set(CPACK_PACKAGE_NAME trackgate)
set(CPACK_PACKAGE_VENDOR trackgate)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${TRACKGATE_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "real-time order-tracking websocket gateway")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Debian policy 10.1: binaries in a package are stripped, whatever the
# build type (lintian's unstripped-binary-or-object is an error).
set(CPACK_STRIP_FILES ON)
# `make package_source` would otherwise pack the build trees too.
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "__pycache__")

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The summary above is the first line; this is the long description.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "trackgated takes courier updates from backends (POST /v1/updates) and from
delivery providers' webhooks, stores and publishes them through Redis, and
pushes each one to every browser watching the order over a websocket.
.
This package holds trackgated, its systemd units (shipped disabled),
trackgate-watch, trackgate-token, their man pages, and example
configurations for nginx, HAProxy and Redis.")

find_program(TRACKGATE_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(TRACKGATE_DPKG_SHLIBDEPS)
  set(_tg_shlibdeps ON)
else()
  set(_tg_shlibdeps OFF)
endif()
set(TRACKGATE_DEB_SHLIBDEPS ${_tg_shlibdeps} CACHE BOOL
    "Let dpkg-shlibdeps (dpkg-dev) write the .deb's Depends, with versions; OFF: the list below")
if(TRACKGATE_DEB_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  # dpkg-shlibdeps finds what the binaries link; the plugin comes on top.
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libwebsockets-evlib-uv")
else()
  # Debian 12's names for what trackgated and trackgate-watch link.
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libc6, libssl3, libjwt0, libwebsockets17, libwebsockets-evlib-uv, libhiredis0.14, libuv1, libcjson1, libinih1, libsystemd0")
endif()
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "redis-server")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "nginx | haproxy, redis-tools")

# /etc files are conffiles (Debian policy 10.7); dpkg keeps an admin's edits.
set(TRACKGATE_DEB_CONFFILES ${CMAKE_CURRENT_BINARY_DIR}/deb-control/conffiles)
file(WRITE ${TRACKGATE_DEB_CONFFILES} "/etc/trackgate/trackgated.conf.example\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
  ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
  ${PROJECT_SOURCE_DIR}/deploy/debian/postrm
  ${TRACKGATE_DEB_CONFFILES})
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

include(CPack)
