// What the two engines of the fleet store share (store.cpp): the values
// blob, the signal-set text, the checks on a batch, the migration rule and
// the assembly of query results.  Not for use outside fleet/.
#pragma once

#include "fleet/store.hpp"

#include <functional>
#include <map>
#include <string_view>

namespace qallow::fleet::detail {

// The values of one row as little-endian float64, 8 bytes each (NaN kept
// bit for bit).
std::string encode_values(std::span<const double> values);
void encode_values(std::span<const double> values, std::string& out); // reusing out's buffer
// Value `i` of a blob (NaN past its end).
double decode_value(std::string_view blob, size_t i);

// A signal list as stored in signal_sets.names, and back.
std::string join_signals(const std::vector<std::string>& signals);
std::vector<std::string> split_signals(std::string_view names);

// Throws std::invalid_argument naming the node and batch when the batch is
// malformed (no node or epoch, batch 0, a value count that is not
// ticks x signals, a signal name that is empty or holds a ',').
void check_batch(const Batch& b);

int64_t now_ms();

// The schema rule: `found` newer than kSchemaVersion is refused naming both;
// otherwise `step(v)` is called for each v from `found` to kSchemaVersion - 1
// (the caller runs them in one transaction and records the new version).
void migrate(const std::string& store, int found, const std::function<void(int from)>& step);

// The SQL of migration step `from` -> `from + 1` for one engine.
std::vector<std::string> sqlite_steps(int from);
std::vector<std::string> postgres_steps(int from);

// Builds a QueryResult from stored rows in order: the query's signals, or
// when it names none every signal of the rows in order of first appearance.
class ResultBuilder {
public:
    ResultBuilder(const Query& q, std::function<const std::vector<std::string>&(int64_t set_id)> names);
    void add(std::string node, int64_t tick, int64_t time_ms, int64_t set_id, std::string_view blob);
    QueryResult finish();

private:
    struct Raw {
        std::string node;
        int64_t tick, time_ms, set_id;
        std::string blob;
    };
    const std::vector<int>& columns_of(int64_t set_id); // set position of each result column, -1 none
    std::vector<std::string> wanted_;
    bool all_;
    std::function<const std::vector<std::string>&(int64_t)> names_;
    std::vector<Raw> raw_;
    std::map<int64_t, std::vector<int>> columns_;
};

// The stable 64-bit key of a cluster's primary lock (FNV-1a of
// "qallow-primary/<cluster>"), the same in every process and build.
int64_t primary_lock_key(const std::string& cluster);

} // namespace qallow::fleet::detail
