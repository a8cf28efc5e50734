# Stress tests of delivery under failure, included by CMakeLists.txt (after the
# TG_IT_* variables and the integration fixture are defined there).
#
#   slow_watcher    10 000 updates past watchers that stop reading: bounded RSS,
#                   coalescing, 4408 (queue full / slow-timeout) + resume; the
#                   normal watchers miss nothing
#   redis_restart   kill -9 redis-server under continuous ingest, restart it:
#                   503s while down, no duplicate, every watcher ends on the final state
#   resume          ?since=CURSOR: exact replay, nothing to replay, trimmed and
#                   future cursors (reset snapshot), an invalid cursor (4400)
#   shutdown        1 000 watchers over 50 orders, SIGTERM: every one gets 1001
#   keepalive       pings; a peer that never answers is hung up on
#   closing_peers   a closed peer that stalls but pongs is dropped; nothing after Close; RSTs
#   limits          max-per-client (1008), max-connections (503 / 1013), 1009,
#                   slowloris (http-timeout), a huge header section
#
#   ctest --test-dir BUILD -L stress --output-on-failure
#
# Each runs in well under a minute; the 300 s TIMEOUT is only a backstop.
# test_stress_slow_watcher.py bounds trackgated's RSS growth (64 MiB).  It detects
# an ASan build itself (the binary holds the string __asan_init): it then allows
# 4x as much and starts that daemon with ASAN_OPTIONS+=quarantine_size_mb=16 (the
# default 256 MB quarantine of freed memory would count as growth).
# TG_STRESS_RSS_SCALE=<factor> in the environment overrides the factor.
# The tests that collect several checks SIGTERM the daemon at the end even when a
# check failed, so an ASan build's exit status (a leak report) is always checked.

foreach(name slow_watcher redis_restart resume shutdown limits keepalive closing_peers)
  add_test(NAME integration.stress.${name}
           COMMAND ${TG_IT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_stress_${name}.py ${TG_IT_ARGS})
  set_tests_properties(integration.stress.${name} PROPERTIES
    FIXTURES_REQUIRED ${TG_IT_FIXTURE} LABELS "integration;stress" TIMEOUT 300
    ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
endforeach()
