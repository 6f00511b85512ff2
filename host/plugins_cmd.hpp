// `qallow plugins`: what a plugin directory holds, and why any file in it was refused.
#pragma once

#include <filesystem>
#include <optional>

namespace qallow {

int plugins_command(const std::optional<std::filesystem::path>& dir);

} // namespace qallow
