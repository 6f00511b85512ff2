// Digests (and later keys and signatures).  The only part of the host that
// includes mbedTLS, so that a change of crypto library touches one file.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace qallow::crypto {

// Lower-case hex SHA-256.
std::string sha256_hex(std::string_view data);
// Streams the file; throws std::runtime_error naming the path on I/O errors.
std::string sha256_file_hex(const std::filesystem::path& path);

} // namespace qallow::crypto
