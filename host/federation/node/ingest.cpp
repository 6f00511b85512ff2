#include "federation/node/ingest.hpp"

#include "federation/wire/telemetry.hpp"
#include "util/crypto.hpp"
#include "util/json_input.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace qallow::fed {
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// The store keeps ticks, batch numbers and times as signed 64-bit numbers.
bool whole63(const json& v) { return json_whole(v) && v.get<uint64_t>() <= uint64_t(INT64_MAX); }

// What plugins name signals with (instance.signal); the store joins a
// row's names with ',' and so must never see one inside a name.
bool signal_name_ok(const std::string& s) {
    return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == ':' || c == '-';
    });
}

Rejection bad(const std::string& field, const std::string& what) {
    return {Reject::malformed, "telemetry payload field \"" + field + "\": " + what};
}

// "ticks" and "values" (federation/wire/telemetry.hpp).
std::optional<Rejection> read_rows(const json& p, fleet::Batch& b) {
    auto t = p.find("ticks");
    if (t == p.end() || !t->is_array() || t->empty() || t->size() > 1'000'000)
        return bad("ticks", "expected an array of 1 to 1000000 tick numbers");
    b.ticks.reserve(t->size());
    for (const json& tick : *t) {
        if (!whole63(tick)) return bad("ticks", "every tick must be a whole number up to 2^63-1");
        b.ticks.push_back(tick.get<uint64_t>());
    }
    auto v = p.find("values");
    if (v == p.end() || !v->is_string()) return bad("values", "expected base64 of the rows' doubles (little-endian)");
    std::string bytes;
    try {
        bytes = crypto::base64_decode(v->get_ref<const std::string&>());
    } catch (const std::exception&) {
        return bad("values", "not valid base64");
    }
    const size_t want = b.ticks.size() * b.signals.size();
    if (!unpack_f64le(bytes, b.values) || b.values.size() != want)
        return bad("values", std::to_string(bytes.size()) + " bytes; " + std::to_string(b.ticks.size()) + " ticks of " +
                                 std::to_string(b.signals.size()) + " signals need " + std::to_string(want * 8));
    return std::nullopt;
}

} // namespace

std::variant<fleet::Batch, Rejection> telemetry_batch(const Envelope& e) {
    const json& p = e.payload;
    if (!p.is_object()) return bad("", "expected an object");
    fleet::Batch b;
    b.node = e.node;
    b.session = e.session;
    if (!p.contains("batch") || !whole63(p["batch"]) || p["batch"].get<uint64_t>() < 1)
        return bad("batch", "expected a whole number from 1 to 2^63-1");
    b.batch = p["batch"].get<uint64_t>();
    if (!p.contains("epoch") || !p["epoch"].is_string() || p["epoch"].get<std::string>().empty() ||
        p["epoch"].get<std::string>().size() > 64)
        return bad("epoch", "expected the outbox epoch, a string of 1 to 64 characters");
    b.epoch = p["epoch"].get<std::string>();
    if (!p.contains("time_ms") || !whole63(p["time_ms"]))
        return bad("time_ms", "expected milliseconds since the Unix epoch, a whole number");
    b.time_ms = p["time_ms"].get<int64_t>();
    if (!p.contains("signals") || !p["signals"].is_array() || p["signals"].empty() || p["signals"].size() > 4096)
        return bad("signals", "expected an array of 1 to 4096 signal names");
    for (const json& s : p["signals"]) {
        if (!s.is_string() || !signal_name_ok(s.get_ref<const std::string&>()))
            return bad("signals", "every name must be 1 to 128 of [A-Za-z0-9_.:-]");
        b.signals.push_back(s.get<std::string>());
    }
    if (auto r = read_rows(p, b)) return *r;
    return b;
}

Ingest::Ingest(Setup setup, std::unique_ptr<fleet::FleetStore> store) : s_(std::move(setup)), store_(std::move(store)) {
    latency_ms_.reserve(4096);
}

std::optional<Rejection> Ingest::add(const Envelope& e) {
    auto b = telemetry_batch(e);
    if (auto* r = std::get_if<Rejection>(&b)) return *r;
    waiting_.push_back(std::move(std::get<fleet::Batch>(b)));
    // Past the bound the oldest goes unreceipted: its edge still holds it.
    while (waiting_.size() > s_.max_waiting_batches) {
        waiting_.pop_front();
        ++let_go_;
    }
    return std::nullopt;
}

void Ingest::add(std::vector<fleet::Event> events, std::vector<fleet::RidState> rids) {
    for (auto& e : events) events_.push_back(std::move(e));
    for (auto& r : rids) rids_.push_back(std::move(r));
}

void Ingest::poll(std::chrono::steady_clock::time_point now, std::vector<Outgoing>& out) {
    if ((!waiting_.empty() || !events_.empty() || !rids_.empty()) && now >= next_try_) commit(now);
    receipt(out);
    if (now >= next_expire_ && !down_) expire(now);
}

void Ingest::commit(std::chrono::steady_clock::time_point now) {
    std::vector<fleet::Batch> batches(std::make_move_iterator(waiting_.begin()), std::make_move_iterator(waiting_.end()));
    waiting_.clear();
    try {
        size_t fresh = store_->commit(batches, events_, rids_);
        const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch()).count();
        for (const auto& b : batches) {
            done_[b.node][b.epoch].push_back(b.batch);
            rows_ += b.ticks.size();
            double ms = double(now_ms - b.time_ms);
            if (latency_ms_.size() < 4096) latency_ms_.push_back(ms);
            else latency_ms_[latency_at_++ % 4096] = ms;
        }
        batches_ += fresh;
        duplicates_ += batches.size() - fresh;
        events_.clear();
        rids_.clear();
        if (down_) spdlog::info("fleet store: {} reachable again; {} batches committed", store_->describe(), batches.size());
        down_ = false;
        backoff_ = 100ms;
    } catch (const fleet::StoreUnavailable& e) {
        for (auto it = batches.rbegin(); it != batches.rend(); ++it) waiting_.push_front(std::move(*it));
        failed(e.what(), now);
    } catch (const std::exception& e) {
        // Refused, not unreachable: retrying the same batches would refuse
        // again.  They go unreceipted (their edges keep them); the records
        // stay to be committed with the next batches.
        let_go_ += batches.size();
        ++failures_;
        last_error_ = e.what();
        spdlog::error("fleet store: {} refused {} batches: {}", store_->describe(), batches.size(), e.what());
        next_try_ = now + backoff_;
    }
}

void Ingest::failed(const std::string& why, std::chrono::steady_clock::time_point now) {
    ++failures_;
    last_error_ = why;
    if (!down_ || now >= next_warn_) {
        spdlog::warn("fleet store: cannot commit ({}); {} batches and {} records wait, retrying in {} ms", why,
                     waiting_.size(), events_.size(), backoff_.count());
        next_warn_ = now + 10s;
    }
    down_ = true;
    next_try_ = now + backoff_;
    backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, 5000ms);
}

// Consecutive batch numbers as ranges: a receipt for 100 batches is a few bytes.
void Ingest::receipt(std::vector<Outgoing>& out) {
    if (done_.empty()) return;
    json t = json::object();
    for (auto& [node, epochs] : done_)
        for (auto& [epoch, nums] : epochs) {
            std::sort(nums.begin(), nums.end());
            json ranges = json::array();
            for (size_t i = 0; i < nums.size();) {
                size_t j = i;
                while (j + 1 < nums.size() && nums[j + 1] <= nums[j] + 1) ++j;
                ranges.push_back({nums[i], nums[j]});
                i = j + 1;
            }
            t[node] = {{"epoch", epoch}, {"batches", std::move(ranges)}};
        }
    done_.clear();
    out.push_back({s_.self, "receipt", {{"telemetry", std::move(t)}}});
}

void Ingest::expire(std::chrono::steady_clock::time_point now) {
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch()).count();
    constexpr uint64_t kLimit = 10'000; // one short transaction: ingest waits for at most this
    try {
        fleet::Expired x = store_->expire(kLimit, now_ms);
        expired_ += x.rows;
        next_expire_ = now + (x.rows >= kLimit ? 0ms : 1000ms);
    } catch (const std::exception& e) {
        spdlog::warn("fleet store: retention: {}", e.what());
        next_expire_ = now + 5s;
    }
}

bool Ingest::primary(std::chrono::steady_clock::time_point now) {
    if (now < next_lock_) return primary_;
    next_lock_ = now + 500ms;
    try {
        primary_ = store_->hold_primary(s_.cluster);
    } catch (const std::exception&) { // unreachable: whoever holds the lock now, it is not us
        primary_ = false;
    }
    return primary_;
}

json Ingest::status() const {
    std::vector<double> l = latency_ms_;
    auto pct = [&](double q) -> json {
        if (l.empty()) return nullptr;
        size_t k = std::min(l.size() - 1, size_t(q * double(l.size())));
        std::nth_element(l.begin(), l.begin() + k, l.end());
        return l[k];
    };
    return {{"store", store_->describe()},
            {"reachable", !down_},
            {"rows", rows_},
            {"batches", batches_},
            {"duplicate_batches", duplicates_},
            {"waiting_batches", waiting_.size()},
            {"waiting_records", events_.size()},
            {"let_go_batches", let_go_},
            {"commit_failures", failures_},
            {"last_error", last_error_},
            {"expired_rows", expired_},
            {"primary", primary_},
            {"latency_ms", {{"p50", pct(0.50)}, {"p99", pct(0.99)}, {"batches", l.size()}}}};
}

} // namespace qallow::fed
