#include "ops/log_format.hpp"

#include "util/text.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/details/log_msg.h>

#include <chrono>
#include <cstdio>
#include <ctime>
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

} // namespace

std::unique_ptr<spdlog::formatter> make_json_log_formatter() { return std::make_unique<JsonFormatter>(); }

} // namespace qallow
