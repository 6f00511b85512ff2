// The ledger's commands, callable without the command line (the fuzz
// targets read arbitrary files through ledger_show_command).
#pragma once
#include <filesystem>
#include <optional>
#include <string>

namespace qallow::cli {

// `qallow keys gen`: DIR/<ID>.key (0600) and DIR/<ID>.pub.  0, or 2 (named).
int keys_gen_command(const std::filesystem::path& out_dir, const std::string& node_id);
// `qallow ledger verify`: 0 verified, 1 a bad entry (its line named), 2 unreadable.
int ledger_verify_command(const std::filesystem::path& file, const std::optional<std::filesystem::path>& trust_dir,
                          bool cluster = false);
// `qallow ledger show`: the entries as a table; 2 when the file cannot be read.
int ledger_show_command(const std::filesystem::path& file, const std::optional<std::string>& kind,
                        const std::optional<std::string>& since);

} // namespace qallow::cli
