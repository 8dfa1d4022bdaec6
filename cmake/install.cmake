# Installation in the FHS layout of a Debian service, and the Debian package (CPack DEB).
#
#   cmake --install build --prefix /usr       (scripts/build configures CMAKE_INSTALL_PREFIX=/usr)
#   cpack --config build/CPackConfig.cmake -B build/package      -> facilityd_<version>_amd64.deb
#
# Why CPack and not a debian/ directory with dpkg-buildpackage: the package is made from the very
# binaries the test suite has just tested, in seconds, so every CI run builds, lints (lintian)
# and checks it; dpkg-buildpackage would build everything a second time with other flags (about
# 7 minutes on the CI machine). What debhelper would add by itself is done here explicitly:
# dependencies computed by dpkg-shlibdeps, conffiles, the systemd maintainer scripts, compressed
# man pages and changelog, stripped binaries, a copyright file.
include(GNUInstallDirs)

if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(FACILITYD_UNITDIR /lib/systemd/system)  # Debian 12 (systemd 252, no merged /usr yet)
else()
  set(FACILITYD_UNITDIR ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
set(FACILITYD_DOCDIR ${CMAKE_INSTALL_DATAROOTDIR}/doc/facilityd)

install(TARGETS facilityd facility-sim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The configuration: a conffile (packaging/debian/conffiles lists it).
install(FILES config/default/facilityd.yaml DESTINATION ${FACILITYD_SYSCONFDIR})

# Shipped data: profiles, the demo site, the monitoring package.
file(GLOB FACILITYD_PROFILES CONFIGURE_DEPENDS config/profiles/*.yaml)
install(FILES ${FACILITYD_PROFILES} DESTINATION ${FACILITYD_DATADIR}/profiles)
install(FILES config/demo/facilityd.yaml DESTINATION ${FACILITYD_DATADIR}/demo)
install(FILES config/prometheus/facilityd-alerts.rules.yml
              config/prometheus/facilityd-recording.rules.yml
        DESTINATION ${FACILITYD_DATADIR}/prometheus)
file(GLOB FACILITYD_RULE_TESTS CONFIGURE_DEPENDS config/prometheus/tests/*.yml)
install(FILES ${FACILITYD_RULE_TESTS} DESTINATION ${FACILITYD_DATADIR}/prometheus/tests)
install(FILES config/grafana/facilityd-dashboard.json DESTINATION ${FACILITYD_DATADIR}/grafana)
install(FILES config/nginx/facilityd-metrics.conf DESTINATION ${FACILITYD_DATADIR}/nginx)
install(FILES config/alertmanager/alertmanager.yml DESTINATION ${FACILITYD_DATADIR}/alertmanager)

# The unit, with the install prefix's paths.
file(READ systemd/facilityd.service FACILITYD_UNIT)
string(REPLACE "/usr/bin/" "${CMAKE_INSTALL_FULL_BINDIR}/" FACILITYD_UNIT "${FACILITYD_UNIT}")
string(REPLACE "/etc/facilityd/" "${FACILITYD_SYSCONFDIR}/" FACILITYD_UNIT "${FACILITYD_UNIT}")
file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/systemd/facilityd.service CONTENT "${FACILITYD_UNIT}")
install(FILES ${CMAKE_BINARY_DIR}/systemd/facilityd.service DESTINATION ${FACILITYD_UNITDIR})

# Documentation, keeping README.md's relative links (docs/…) valid.
install(FILES README.md DESTINATION ${FACILITYD_DOCDIR})
file(GLOB FACILITYD_DOCS CONFIGURE_DEPENDS docs/*.md)
install(FILES ${FACILITYD_DOCS} DESTINATION ${FACILITYD_DOCDIR}/docs)
file(GLOB FACILITYD_SCHEMAS CONFIGURE_DEPENDS docs/schemas/*.json)
install(FILES ${FACILITYD_SCHEMAS} DESTINATION ${FACILITYD_DOCDIR}/docs/schemas)
file(GLOB FACILITYD_API_SCHEMAS CONFIGURE_DEPENDS docs/schemas/api/*.json)
install(FILES ${FACILITYD_API_SCHEMAS} DESTINATION ${FACILITYD_DOCDIR}/docs/schemas/api)
install(FILES config/examples/minimal.yaml systemd/serial-ports.conf
        DESTINATION ${FACILITYD_DOCDIR}/examples)
install(FILES packaging/debian/copyright DESTINATION ${FACILITYD_DOCDIR})
install(FILES ${FACILITYD_GENERATED_DIR}/changelog.gz DESTINATION ${FACILITYD_DOCDIR})

# Man pages and bash completion, generated from the programs' --help and docs/config.md.
find_program(GO_MD2MAN go-md2man)
find_package(Python3 COMPONENTS Interpreter)
if(GO_MD2MAN AND Python3_FOUND)
  set(CLI_DOCS ${CMAKE_BINARY_DIR}/cli-docs)
  add_custom_command(
    OUTPUT ${CLI_DOCS}/man/facilityd.8.gz ${CLI_DOCS}/man/facility-sim.1.gz
           ${CLI_DOCS}/man/facilityd.yaml.5.gz ${CLI_DOCS}/completion/facilityd
           ${CLI_DOCS}/completion/facility-sim
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/gen-cli-docs.py
            --facilityd $<TARGET_FILE:facilityd> --sim $<TARGET_FILE:facility-sim>
            --version ${PROJECT_VERSION} --out ${CLI_DOCS}
    DEPENDS facilityd facility-sim ${CMAKE_SOURCE_DIR}/scripts/gen-cli-docs.py
            ${CMAKE_SOURCE_DIR}/docs/config.md ${CMAKE_SOURCE_DIR}/docs/man/facilityd.8.md
            ${CMAKE_SOURCE_DIR}/docs/man/facility-sim.1.md
    COMMENT "man pages and bash completion from --help and docs/config.md"
    VERBATIM)
  add_custom_target(cli-docs ALL DEPENDS ${CLI_DOCS}/man/facilityd.8.gz)
  install(FILES ${CLI_DOCS}/man/facilityd.8.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
  install(FILES ${CLI_DOCS}/man/facilityd.yaml.5.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
  install(FILES ${CLI_DOCS}/man/facility-sim.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
  install(FILES ${CLI_DOCS}/completion/facilityd ${CLI_DOCS}/completion/facility-sim
          DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
else()
  message(STATUS "go-md2man or python3 not found: no man pages (scripts/install-deps installs "
                 "them); the package cannot be built")
endif()

# ---- The Debian package ----------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME facilityd)
set(CPACK_PACKAGE_VENDOR "facilityd developers")
set(CPACK_PACKAGE_CONTACT "facilityd developers <facilityd@noc.example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "data-center facility monitoring daemon (Modbus to Prometheus and MQTT)")
# CPack puts the summary on the Description: line and this text, indented, below it.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
"facilityd polls PDUs, UPSs, energy meters, cooling units and rack sensors
over Modbus TCP, RTU over TCP and RTU serial lines (read-only), and derives
what a data-center NOC watches: cabinet power per feed and phase against the
cabinet's rating, failover headroom, site IT and facility power, PUE per
ISO/IEC 30134-2, occupancy against the build-out plan, cooling and inlet
temperatures. It serves them as Prometheus metrics, publishes MQTT messages
and writes capacity reports from an embedded history.

The package ships the daemon with a hardened systemd unit, register-map
profiles, Prometheus alert and recording rules, a Grafana dashboard, and
facility-sim, a Modbus simulator of a whole site for trying it out.")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/facilityd/facilityd")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# deb-systemd-helper and deb-systemd-invoke in the maintainer scripts; /bin/kill for ExecReload=.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "init-system-helpers (>= 1.52), procps")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "prometheus, prometheus-alertmanager, mosquitto, nginx")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/debian/conffiles ${CMAKE_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_SOURCE_DIR}/packaging/debian/prerm ${CMAKE_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_STRIP_FILES TRUE)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
# The version is read at packaging time, from the revision the binaries were built from.
configure_file(${CMAKE_SOURCE_DIR}/cmake/cpack_project.cmake.in
               ${CMAKE_BINARY_DIR}/CPackProjectConfig.cmake @ONLY)
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_BINARY_DIR}/CPackProjectConfig.cmake)
include(CPack)
