# cmake --install: headers, the shm library, tools, a CMake package
# (find_package(ringwire) -> ringwire::queue, ringwire::shm, ringwire::ipc, ringwire::raft) and ringwire.pc.
include(CMakePackageConfigHelpers)

install(DIRECTORY include/ringwire DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS ringwire_queue ringwire_shm ringwire_ipc ringwire_raft EXPORT ringwireTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT ringwireTargets NAMESPACE ringwire::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ringwire)

configure_package_config_file(cmake/ringwireConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/ringwireConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ringwire)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ringwireConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ringwireConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/ringwireConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ringwire)

# The .pc file finds its prefix relative to itself, so --prefix at install time works.
file(RELATIVE_PATH RINGWIRE_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
string(REGEX REPLACE "/$" "" RINGWIRE_PC_TO_PREFIX "${RINGWIRE_PC_TO_PREFIX}")
configure_file(cmake/ringwire.pc.in ${CMAKE_CURRENT_BINARY_DIR}/ringwire.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ringwire.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
