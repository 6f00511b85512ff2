# The qallow-edge .deb (edge/README.md), included by the top CMakeLists.txt
# in the edge build: `cpack -G DEB` in build-edge/ (edge/package.sh).
# qallow-edge and the edge plugins come from their own install rules; this
# adds the systemd unit, its first-boot key script, the default config and
# the docs.
set(QALLOW_EDGE_PKG ${CMAKE_CURRENT_LIST_DIR}/package)
install(FILES ${QALLOW_EDGE_PKG}/qallow-edge.service DESTINATION lib/systemd/system COMPONENT edge)
install(PROGRAMS ${QALLOW_EDGE_PKG}/qallow-edge-firstboot DESTINATION lib/qallow COMPONENT edge)
install(FILES ${QALLOW_EDGE_PKG}/edge.json DESTINATION /etc/qallow COMPONENT edge)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/README.md DESTINATION share/doc/qallow-edge COMPONENT edge)

execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE QALLOW_DEB_ARCH OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET)
if(CMAKE_CROSSCOMPILING AND CMAKE_SYSTEM_PROCESSOR STREQUAL "aarch64")
  set(QALLOW_DEB_ARCH arm64)
endif()
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME qallow-edge)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Qallow maintainers <maintainers@qallow.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Qallow edge node: a small plugin tick loop that federates over MQTT")
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${QALLOW_DEB_ARCH})
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
# Depends from the binaries' shared libraries (dpkg-shlibdeps), plus passwd
# (useradd) for the service user: both in a minimal root, so dpkg -i alone
# installs it (edge/deb-root-test.sh).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${QALLOW_EDGE_PKG}/postinst;${QALLOW_EDGE_PKG}/prerm;${QALLOW_EDGE_PKG}/conffiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
