// The WebDriver client (tests/support/webdriver.hpp) against Debian's real
// headless Chromium and chromedriver: a page whose script builds the DOM and
// sets a value late, read back through eval and wait_for; a script that
// throws; and no Chromium left running once the Browser is gone.
#include "process.hpp"

#include "support/webdriver.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>

namespace {

using namespace qallow::itest;
using nlohmann::json;

const char* kPage = R"(<!doctype html>
<html><head><meta charset="utf-8"><title>Qallow browser test</title></head>
<body>
<script>
  const p = document.createElement('p');
  p.id = 'made';
  p.textContent = 'built by the page';
  document.body.appendChild(p);
  setTimeout(() => { window.x = 42; }, 200);
</script>
</body></html>
)";

// Processes whose command line names `needle` (a zombie's is empty).
int processes_naming(const std::string& needle) {
    int n = 0;
    for (const auto& e : fs::directory_iterator("/proc")) {
        std::string cmdline = read_file(e.path() / "cmdline");
        for (char& c : cmdline)
            if (c == '\0') c = ' ';
        if (cmdline.find(needle) != std::string::npos) ++n;
    }
    return n;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "(no exception)";
}

TEST(Browser, RunsScriptsInARealPage) {
    if (!qallow::test::Browser::available()) GTEST_SKIP() << "no /usr/bin/chromium or /usr/bin/chromedriver";
    TempDir dir;
    fs::path page = dir.write("page.html", kPage);
    // Every process of ours names this folder: chromedriver's log, Chromium's
    // profile, the crash handler's database under its HOME.
    const std::string mine = (dir / "browser").string();
    {
        auto t0 = std::chrono::steady_clock::now();
        qallow::test::Browser b(dir / "browser");
        auto started = std::chrono::steady_clock::now() - t0;
        RecordProperty("session_start_ms", int(std::chrono::duration_cast<std::chrono::milliseconds>(started).count()));
        EXPECT_GT(processes_naming(mine + "/profile"), 0) << "no Chromium with its profile in " << mine;

        b.open("file://" + page.string());
        EXPECT_EQ(b.title(), "Qallow browser test");
        EXPECT_EQ(b.eval("return document.getElementById('made').textContent"), "built by the page");
        EXPECT_EQ(b.eval("return [1, 'two', {three: true}, null]"), json::parse(R"([1, "two", {"three": true}, null])"));
        EXPECT_EQ(b.wait_for("return window.x === 42", 10s), true);
        EXPECT_EQ(b.wait_for("return window.x", 1s), 42);

        std::string thrown = error_of([&] { b.eval("throw new Error('boom from the page')"); });
        EXPECT_NE(thrown.find("boom from the page"), std::string::npos) << thrown;
        std::string late = error_of([&] { b.wait_for("return window.never", 300ms); });
        EXPECT_NE(late.find("timed out"), std::string::npos) << late;
        EXPECT_NE(late.find("return window.never"), std::string::npos) << late;
        // A script that keeps throwing times out naming its error.
        std::string failing = error_of([&] { b.wait_for("return document.querySelector('#none').id", 300ms); });
        EXPECT_NE(failing.find("null"), std::string::npos) << failing;
    }
    EXPECT_TRUE(wait_until([&] { return processes_naming(mine) == 0; }, 10s, "chromedriver and Chromium to be gone"));
}

} // namespace
