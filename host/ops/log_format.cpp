#include "ops/log_format.hpp"

#include "util/text.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/sink.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>

namespace qallow {
namespace {

class JsonFormatter : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        using namespace std::chrono;
        auto since = msg.time.time_since_epoch();
        std::time_t secs = duration_cast<seconds>(since).count();
        long micros = long(duration_cast<microseconds>(since).count() % 1'000'000);
        std::string time = utc_timestamp(secs, micros, 6);
        auto level = spdlog::level::to_string_view(msg.level);
        nlohmann::json j = {{"time", time},
                            {"level", std::string(level.data(), level.size())},
                            {"msg", std::string(msg.payload.data(), msg.payload.size())}};
        std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        line += '\n';
        dest.append(line.data(), line.data() + line.size());
    }
    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

// Writes the priority, then lets the sink it wraps write the line as it
// formats it (text or JSON: which one is main()'s choice, made before).
// stderr is unbuffered, so the two land in order; the lock keeps another
// line from coming between them.
class JournalPrioritySink final : public spdlog::sinks::sink {
public:
    explicit JournalPrioritySink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {
        set_level(inner_->level());
    }
    void log(const spdlog::details::log_msg& msg) override {
        std::lock_guard<std::mutex> lk(mutex_);
        std::string_view p = journal_priority(msg.level);
        std::fwrite(p.data(), 1, p.size(), stderr);
        inner_->log(msg);
    }
    void flush() override { inner_->flush(); }
    void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
    void set_formatter(std::unique_ptr<spdlog::formatter> f) override { inner_->set_formatter(std::move(f)); }

private:
    std::shared_ptr<spdlog::sinks::sink> inner_;
    std::mutex mutex_;
};

} // namespace

std::unique_ptr<spdlog::formatter> make_json_log_formatter() { return std::make_unique<JsonFormatter>(); }

bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    struct stat st {};
    if (!stream || !*stream || ::fstat(STDERR_FILENO, &st) != 0) return false;
    return stream == std::to_string(uint64_t(st.st_dev)) + ":" + std::to_string(uint64_t(st.st_ino));
}

std::string_view journal_priority(spdlog::level::level_enum level) {
    switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return "<7>";
    case spdlog::level::info: return "<6>";
    case spdlog::level::warn: return "<4>";
    case spdlog::level::err: return "<3>";
    case spdlog::level::critical: return "<2>";
    default: return "";
    }
}

void use_journal_priorities(spdlog::logger& logger) {
    for (auto& sink : logger.sinks())
        if (!std::dynamic_pointer_cast<JournalPrioritySink>(sink)) sink = std::make_shared<JournalPrioritySink>(sink);
}

} // namespace qallow
