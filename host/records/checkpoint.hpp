// Epoch checkpoints (docs/checkpoints.md): everything a run needs to go on
// from a tick boundary exactly as if it had never stopped -- the tick, the
// ethics counters, every instance's state blob (save_state) with the build
// that wrote it, the live parameter values, the signal table -- in one file
// with a SHA-256 digest over its content, written through a temporary file,
// fsync and rename.  `qallow run --resume DIR` reads them back.
#pragma once

#include "core/runner.hpp"
#include "core/simulation.hpp"
#include "records/summary.hpp"

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace qallow {

// A checkpoint file that cannot be used: what() names the file and what is wrong.
class CheckpointError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// What the run was started with, so that `--resume` can start it again.
struct CheckpointOrigin {
    std::string config_file;          // absolute
    std::vector<std::string> sets;    // --set as given
    std::string plugin_dir;           // absolute
    std::string out_dir;              // absolute
    nlohmann::json resolved;          // Simulation::resolved() at the run's start (its digest: config_digest)
    nlohmann::json checkpoint_every = nullptr; // --checkpoint-every as given, else null
};

// One checkpoint read back and verified.
struct Checkpoint {
    std::filesystem::path file;
    std::string digest;   // SHA-256 over the content (the file's trailer)
    nlohmann::json header; // see docs/checkpoints.md
    std::string bytes;    // the whole file; blobs are views into it
    uint64_t tick() const { return header.at("tick").get<uint64_t>(); }
    // Instance i's state blob (header["instances"][i]) and the signal table.
    std::string_view blob(size_t instance) const;
    std::string_view signal_table() const;
};

// Serialises the running simulation (between ticks) into a checkpoint file
// in `dir` and returns its path; the file's digest goes to `digest`.
// Throws std::runtime_error naming the file on I/O errors.
std::filesystem::path write_checkpoint(Simulation& sim, const RunFacts& facts, uint64_t trial,
                                       const CheckpointOrigin& origin, const std::filesystem::path& dir,
                                       std::string& digest);
// Reads and verifies one file; throws CheckpointError "<file>: <what is wrong>".
Checkpoint read_checkpoint(const std::filesystem::path& file);
// The checkpoint files of a directory, newest first (by trial, then tick).
std::vector<std::filesystem::path> list_checkpoints(const std::filesystem::path& dir);
// Deletes all but the newest `keep`.
void prune_checkpoints(const std::filesystem::path& dir, uint64_t keep);
// `--resume DIR`: DIR's checkpoints/ folder when it has one, else DIR.
std::filesystem::path checkpoint_dir_of(const std::filesystem::path& dir);

// `--resume DIR` (an out dir, a checkpoints dir or one file): the newest
// checkpoint that verifies.  A bad one is an InputError naming it and what
// is wrong, unless `fallback`, which warns and tries the next older one.
Checkpoint find_resume_checkpoint(const std::filesystem::path& dir, bool fallback);

// What differs between a checkpoint and the run about to resume it, one
// line each (a plugin build, the config); empty when nothing does.  Throws
// CheckpointError for differences that no --force can bridge (an instance
// or a signal missing).
std::vector<std::string> checkpoint_differences(const Checkpoint& cp, const Simulation& sim,
                                                const std::string& config_digest, const nlohmann::json& resolved);
// Puts the simulation and the counters in `facts` where the checkpoint left
// them.  Throws CheckpointError when a plugin refuses its state.  An
// instance already disabled in `sim` (a fault) is left out and stays so.
void restore_checkpoint(const Checkpoint& cp, Simulation& sim, RunFacts& facts);

// SHA-256 over every instance's state blob and the deterministic signals
// (summary.json's state_digest; docs/checkpoints.md says exactly what).
std::string state_digest(const Simulation& sim);

// The hook that writes a checkpoint every `every` ticks (0: only when asked)
// and keeps the newest `keep`.
class CheckpointHook : public TickHook {
public:
    CheckpointHook(std::filesystem::path dir, uint64_t every, uint64_t keep, CheckpointOrigin origin);
    void after_tick(Runner& runner, const TickResult& r) override;
    // Writes one now unless the newest already holds this tick.  Logs a
    // failure and returns false; the run goes on.
    bool write(Runner& runner);
    nlohmann::json summary() const; // for summary.json
    const std::filesystem::path& dir() const { return dir_; }
    // Whether this hook wrote `file` (in this process; pruned ones included).
    bool wrote(const std::filesystem::path& file) const;

private:
    std::filesystem::path dir_;
    uint64_t every_, keep_;
    CheckpointOrigin origin_;
    uint64_t written_ = 0, failed_ = 0, last_tick_ = UINT64_MAX, last_trial_ = 0;
    nlohmann::json last_ = nullptr;
    std::vector<std::filesystem::path> mine_;
};

} // namespace qallow
