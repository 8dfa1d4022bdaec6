# The version header (facilityd_version.h: FACILITYD_VERSION, FACILITYD_REVISION) is written at
# every build by cmake/write_version.cmake, so `facilityd --version` and facility_build_info name
# the git revision the binary was built from, not the one CMake was configured at.
include(GNUInstallDirs)
option(FACILITYD_RELEASE "Package version is the project version (else VERSION~gitN.REV)" OFF)
set(FACILITYD_GENERATED_DIR ${CMAKE_BINARY_DIR}/generated)
file(MAKE_DIRECTORY ${FACILITYD_GENERATED_DIR})
add_custom_target(facility_version
  COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${CMAKE_SOURCE_DIR} -DOUT_DIR=${FACILITYD_GENERATED_DIR}
          -DVERSION=${PROJECT_VERSION} -DRELEASE=${FACILITYD_RELEASE} -P ${CMAKE_SOURCE_DIR}/cmake/write_version.cmake
  BYPRODUCTS ${FACILITYD_GENERATED_DIR}/facilityd_version.h
             ${FACILITYD_GENERATED_DIR}/facilityd_version.cmake
             ${FACILITYD_GENERATED_DIR}/changelog.gz
  COMMENT "facilityd version from git"
  VERBATIM)

# Where an installed facilityd finds its system configuration and shipped data (profiles): the
# install prefix's, e.g. /etc/facilityd and /usr/share/facilityd for the Debian package.
set(FACILITYD_SYSCONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/facilityd)
set(FACILITYD_DATADIR ${CMAKE_INSTALL_FULL_DATADIR}/facilityd)
configure_file(${CMAKE_SOURCE_DIR}/cmake/paths.h.in ${FACILITYD_GENERATED_DIR}/facilityd_paths.h
  @ONLY)
