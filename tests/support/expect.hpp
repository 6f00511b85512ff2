// Expectations the tests share: text that must contain a piece, a call
// that must throw a given exception.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <string>

namespace qallow::test {

inline bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}
#define EXPECT_CONTAINS(haystack, needle) \
    EXPECT_TRUE(::qallow::test::contains(haystack, needle)) << "missing: " << (needle) << "\nin: " << (haystack)

// Runs `fn`, expects it to throw E, and returns the message (empty on failure).
template <class E, class Fn>
std::string error_of(Fn&& fn) {
    try {
        fn();
    } catch (const E& e) {
        return e.what();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "threw the wrong exception type: " << e.what();
        return {};
    }
    ADD_FAILURE() << "did not throw";
    return {};
}

} // namespace qallow::test
