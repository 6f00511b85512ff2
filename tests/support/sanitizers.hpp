// SKIP_WHEN_SANITIZED(): for tests of crash attribution.  A sanitizer
// installs its own fatal-signal handlers, which the crash guard leaves in
// place (host/core/quarantine.hpp): crashes are then not recorded at all.
#pragma once

#include <gtest/gtest.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define QALLOW_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define QALLOW_SANITIZED 1
#endif
#endif
#ifdef QALLOW_SANITIZED
#define SKIP_WHEN_SANITIZED() GTEST_SKIP() << "the sanitizer's fatal-signal handlers replace the crash guard's"
#else
#define SKIP_WHEN_SANITIZED() (void)0
#endif
