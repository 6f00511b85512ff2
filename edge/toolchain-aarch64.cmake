# CMake toolchain file: cross-build Qallow for arm64 (aarch64) Linux on a
# Debian x86_64 host, with Debian's cross compiler (g++-aarch64-linux-gnu)
# and the arm64 libraries installed as multiarch packages
# (dpkg --add-architecture arm64; edge/cross-setup.sh).
#
#   cmake -S . -B build-edge-arm64 --toolchain edge/toolchain-aarch64.cmake ...
#
# Libraries come from /usr/lib/aarch64-linux-gnu, headers from /usr/include
# (arch-specific ones from /usr/include/aarch64-linux-gnu, which the cross gcc
# searches itself), CMake packages from /usr/lib/aarch64-linux-gnu/cmake and
# /usr/share/cmake.  Programs (pkg-config, mosquitto, ...) stay the host's.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Multiarch: the target's files live in the host's own root, under the
# aarch64-linux-gnu triplet.  With CMAKE_LIBRARY_ARCHITECTURE set, CMake
# searches <prefix>/lib/aarch64-linux-gnu (and .../cmake) first.  The cross
# toolchain's own sysroot is searched as well.
set(CMAKE_FIND_ROOT_PATH / /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Never pick up the host's x86_64 libraries in /usr/lib/x86_64-linux-gnu.
set(CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu
    /usr/lib/x86_64-linux-gnu/cmake)

# pkg-config for the target: only the arm64 and arch-independent .pc files.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Run arm64 programs (ctest, gtest_discover_tests, try_run) under qemu.  The
# arm64 loader and libraries are in the host's root (libc6:arm64), so "/" is
# the library prefix.
find_program(QALLOW_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(QALLOW_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${QALLOW_QEMU_AARCH64};-L;/" CACHE STRING "Runs arm64 programs on the build host")
endif()
