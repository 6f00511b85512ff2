#include "federation/node/verifier.hpp"

#include "federation/cluster/cluster.hpp"

#include <pthread.h>

namespace qallow::fed {

Verifier::Verifier(const Trust& trust, std::function<void()> ready) : trust_(trust), ready_(std::move(ready)) {
    thread_ = std::thread([this] {
        ::pthread_setname_np(::pthread_self(), "qallow-verify");
        run();
    });
}

Verifier::~Verifier() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
}

void Verifier::submit(Arrival a) {
    {
        std::lock_guard lk(mu_);
        (a.kind == "telemetry" ? telemetry_ : control_).push_back(std::move(a));
    }
    cv_.notify_one();
}

void Verifier::take(std::vector<Opened>& out) {
    std::lock_guard lk(mu_);
    for (auto& o : done_) out.push_back(std::move(o));
    done_.clear();
}

size_t Verifier::pending() const {
    std::lock_guard lk(mu_);
    return control_.size() + telemetry_.size() + opening_ + done_.size();
}

void Verifier::run() {
    for (;;) {
        Arrival a;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return stop_ || !control_.empty() || !telemetry_.empty(); });
            if (stop_) return;
            auto& q = control_.empty() ? telemetry_ : control_;
            a = std::move(q.front());
            q.pop_front();
            ++opening_;
        }
        Opened o{std::move(a), Rejection{Reject::malformed, ""}, false, std::nullopt};
        o.result = open(o.a.sender, o.a.kind, o.a.m.payload, trust_);
        if (auto* e = std::get_if<Envelope>(&o.result); e && e->kind == "ledger") {
            if (const nlohmann::json* entry = reliable_body(e->payload)) {
                o.entry_checked = true;
                o.entry_problem = ledger_entry_problem(trust_, e->node, *entry);
            }
        }
        {
            std::lock_guard lk(mu_);
            done_.push_back(std::move(o));
            --opening_;
        }
        if (ready_) ready_();
    }
}

} // namespace qallow::fed
