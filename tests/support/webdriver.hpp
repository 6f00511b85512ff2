// A real browser for tests: Debian's headless Chromium driven through
// chromedriver over W3C WebDriver (plain HTTP on loopback), so a test can
// load a page and run scripts in it without npm or a Selenium install.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace qallow::test {

// One chromedriver and one browser session.  Everything it writes (the
// chromedriver log, the Chromium profile) goes under `dir`, which must
// outlive the Browser.  The destructor ends the session and kills
// chromedriver's process group, so no Chromium is left behind.
class Browser {
public:
    static constexpr const char* kChromium = "/usr/bin/chromium";
    static constexpr const char* kChromedriver = "/usr/bin/chromedriver";

    // Starts chromedriver on a free loopback port, awaits its /status (30 s),
    // opens a headless session.  Throws std::runtime_error with the tail of
    // chromedriver's log when any of that fails.
    explicit Browser(const std::filesystem::path& dir);
    ~Browser();
    Browser(const Browser&) = delete;
    Browser& operator=(const Browser&) = delete;

    // Chromium and chromedriver are installed and executable.
    static bool available();

    // Navigates and returns once the page has loaded.
    void open(const std::string& url);
    // Runs `script` as a function body in the page; its `return` value.
    // Throws with the JavaScript error's message when the script throws.
    nlohmann::json eval(const std::string& script);
    // Runs eval(script) every 50 ms until its value is truthy (as JavaScript
    // judges it) and returns that value.  A script that throws counts as
    // "not yet" (the page may still be building what it reads); after
    // `timeout` (times QALLOW_TEST_TIME_SCALE) it throws naming the script
    // and its last value or error.
    nlohmann::json wait_for(const std::string& script, std::chrono::milliseconds timeout);
    std::string title();

    // chromedriver's log file (<dir>/chromedriver.log).
    std::filesystem::path log() const { return dir_ / "chromedriver.log"; }

private:
    void start();
    void stop();
    std::string log_tail() const;
    nlohmann::json call(const std::string& method, const std::string& path, const nlohmann::json& body);
    nlohmann::json session_call(const std::string& method, const std::string& path, const nlohmann::json& body);

    std::filesystem::path dir_;
    pid_t pid_ = -1; // chromedriver, leader of its own process group
    uint16_t port_ = 0;
    std::string session_;
};

} // namespace qallow::test
