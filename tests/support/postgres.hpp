// A real PostgreSQL server for tests: Debian's initdb and pg_ctl (the newest
// /usr/lib/postgresql/*/bin), its data and unix socket under a folder of the
// test's, a free loopback TCP port.  As root (CI) the server runs as the
// `postgres` user, since initdb refuses root.
//
// Connections over the unix socket are trusted (conninfo(), as the superuser
// `postgres`); TCP ones need a password (tcp_conninfo(), as the role
// `qallow` with kPassword), for the password-file tests.  The database
// `qallow` exists, owned by `qallow`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace qallow::test {

class PostgresServer {
public:
    static constexpr const char* kPassword = "qallow-test-password";

    // The folder of initdb and pg_ctl, or nothing when PostgreSQL's server
    // is not installed (the caller skips).
    static std::optional<std::filesystem::path> bin_dir();

    // initdb, start, create the role and database: throws with the server's
    // log on failure.
    explicit PostgresServer(const std::filesystem::path& dir);
    ~PostgresServer();
    PostgresServer(const PostgresServer&) = delete;
    PostgresServer& operator=(const PostgresServer&) = delete;

    std::string conninfo(const std::string& dbname = "qallow") const;
    std::string tcp_conninfo(const std::string& dbname = "qallow") const;
    uint16_t port() const { return port_; }
    // pg_ctl stop -m fast / pg_ctl start -w, on the same port.
    void stop();
    void start();
    // Runs SQL through psql as the superuser; returns its output (unaligned,
    // tuples only) and throws when psql fails.
    std::string psql(const std::string& sql, const std::string& dbname = "qallow") const;

private:
    std::string run(const std::vector<std::string>& argv) const;

    std::filesystem::path dir_, bin_, data_, socket_;
    uint16_t port_ = 0;
    bool running_ = false;
};

} // namespace qallow::test
