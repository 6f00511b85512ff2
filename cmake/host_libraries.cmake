# The host's third-party libraries, included by host/CMakeLists.txt.  The
# datacentre build links Debian's shared libraries.  The edge build
# (QALLOW_EDGE, edge/README.md, "Memory") links the small ones statically or
# header-only and leaves OpenSSL out, so that qallow-edge maps no shared
# library but glibc's: each shared library costs its own resident pages
# (code touched, relocations, data) however little of it is used.
#
# Sets: QALLOW_SPDLOG, QALLOW_BOOST_DLL (targets), MBEDCRYPTO_LIBRARY,
# LUA_LIBRARY, QALLOW_PAHO_LIBRARIES (paths or targets), QALLOW_MQTT_TLS and
# QALLOW_CRYPTO (the util/crypto_backend.hpp implementation).
find_package(Boost 1.74 REQUIRED COMPONENTS filesystem system)
find_package(spdlog REQUIRED)
find_package(Threads REQUIRED)
find_path(MBEDTLS_INCLUDE_DIR mbedtls/sha256.h REQUIRED)
find_path(LUA_INCLUDE_DIR lua.hpp PATH_SUFFIXES lua5.4 REQUIRED)
find_path(PAHO_INCLUDE_DIR MQTTAsync.h REQUIRED)

# SHA-256, base64 decoding and signature checks (util/crypto_backend.hpp):
# OpenSSL's libcrypto in the datacentre, several times faster where every
# received message is verified; mbedTLS, which signs anyway, on the edge.
if(QALLOW_EDGE)
  set(QALLOW_CRYPTO_DEFAULT mbedTLS)
else()
  set(QALLOW_CRYPTO_DEFAULT OpenSSL)
endif()
set(QALLOW_CRYPTO ${QALLOW_CRYPTO_DEFAULT} CACHE STRING "SHA-256 and signature checks: OpenSSL (libcrypto) or mbedTLS")
set_property(CACHE QALLOW_CRYPTO PROPERTY STRINGS OpenSSL mbedTLS)
if(NOT QALLOW_CRYPTO MATCHES "^(OpenSSL|mbedTLS)$")
  message(FATAL_ERROR "QALLOW_CRYPTO=${QALLOW_CRYPTO}: allowed are OpenSSL and mbedTLS")
endif()

# MQTT (federation/transport/mqtt_link.cpp): the Paho C client's
# asynchronous library, with TLS (libpaho-mqtt3as, which loads OpenSSL) or
# without (libpaho-mqtt3a).  The datacentre always has TLS; the edge only
# with QALLOW_EDGE_TLS=ON (docs/DECISIONS.md, "MQTT on the edge").
option(QALLOW_EDGE_TLS "Edge build: MQTT over TLS (ssl:// brokers), which loads OpenSSL (about 3 MB resident)" OFF)
if(NOT QALLOW_EDGE OR QALLOW_EDGE_TLS)
  set(QALLOW_MQTT_TLS ON)
  set(QALLOW_PAHO_NAME paho-mqtt3as)
else()
  set(QALLOW_MQTT_TLS OFF)
  set(QALLOW_PAHO_NAME paho-mqtt3a)
endif()

if(NOT QALLOW_EDGE)
  find_library(MBEDCRYPTO_LIBRARY mbedcrypto REQUIRED)
  # Lua 5.4 in its C++ build (Debian: liblua5.4-dev ships both): Lua errors
  # are C++ exceptions, so they unwind host frames with destructors run
  # (scripting/lua_engine.cpp).  Only that file includes the headers.
  find_library(LUA_LIBRARY NAMES lua5.4-c++ REQUIRED)
  find_library(PAHO_MQTT_LIBRARY paho-mqtt3as REQUIRED)
  set(QALLOW_PAHO_LIBRARIES ${PAHO_MQTT_LIBRARY})
  set(QALLOW_SPDLOG spdlog::spdlog)
  set(QALLOW_BOOST_DLL Boost::filesystem Boost::system)
  return()
endif()

# The edge: Debian's static archives (built position-independent, so they
# link into the PIE), the same libraries and versions as the shared ones.
# Cache names of their own, so that a build folder switched between the
# edge and the datacentre, or to QALLOW_EDGE_TLS, finds the right ones.
find_library(QALLOW_MBEDCRYPTO_STATIC NAMES libmbedcrypto.a REQUIRED)
find_library(QALLOW_LUA_STATIC NAMES liblua5.4-c++.a REQUIRED)
find_library(QALLOW_${QALLOW_PAHO_NAME}_STATIC NAMES lib${QALLOW_PAHO_NAME}.a REQUIRED)
set(MBEDCRYPTO_LIBRARY ${QALLOW_MBEDCRYPTO_STATIC})
set(LUA_LIBRARY ${QALLOW_LUA_STATIC})
set(QALLOW_PAHO_LIBRARIES ${QALLOW_${QALLOW_PAHO_NAME}_STATIC} Threads::Threads)
if(QALLOW_MQTT_TLS)
  find_package(OpenSSL 3 REQUIRED COMPONENTS SSL Crypto)
  list(APPEND QALLOW_PAHO_LIBRARIES OpenSSL::SSL OpenSSL::Crypto)
endif()

# spdlog and fmt header-only (Debian ships them only as shared libraries):
# spdlog's own header-only target still links the shared libfmt.
add_library(qallow_spdlog_header_only INTERFACE)
get_target_property(QALLOW_SPDLOG_INCLUDES spdlog::spdlog_header_only INTERFACE_INCLUDE_DIRECTORIES)
target_include_directories(qallow_spdlog_header_only SYSTEM INTERFACE ${QALLOW_SPDLOG_INCLUDES})
target_compile_definitions(qallow_spdlog_header_only INTERFACE SPDLOG_FMT_EXTERNAL FMT_HEADER_ONLY=1)
target_link_libraries(qallow_spdlog_header_only INTERFACE Threads::Threads)
set(QALLOW_SPDLOG qallow_spdlog_header_only)

# Boost.DLL on std::filesystem: the host uses Boost.Filesystem for nothing
# else, and the rest of Boost it uses (Asio, System) is header-only.
add_library(qallow_boost_dll_std_fs INTERFACE)
target_link_libraries(qallow_boost_dll_std_fs INTERFACE Boost::headers)
target_compile_definitions(qallow_boost_dll_std_fs INTERFACE BOOST_DLL_USE_STD_FS)
set(QALLOW_BOOST_DLL qallow_boost_dll_std_fs)
