#include "support/postgres.hpp"

#include "support/files.hpp"
#include "support/process.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace qallow::test {
namespace {

bool as_root() { return ::geteuid() == 0; }

} // namespace

std::optional<fs::path> PostgresServer::bin_dir() {
    std::error_code ec;
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec))
        if (fs::exists(e.path() / "bin" / "initdb") && fs::exists(e.path() / "bin" / "pg_ctl")) found.push_back(e.path() / "bin");
    if (found.empty()) return std::nullopt;
    // The newest: versions are numbers ("15", "16").
    return *std::max_element(found.begin(), found.end(), [](const fs::path& a, const fs::path& b) {
        return std::stoi(a.parent_path().filename().string()) < std::stoi(b.parent_path().filename().string());
    });
}

PostgresServer::PostgresServer(const fs::path& dir) : dir_(dir), data_(dir / "data"), socket_(dir / "sock") {
    auto bin = bin_dir();
    if (!bin) throw std::runtime_error("PostgreSQL's server is not installed (/usr/lib/postgresql/*/bin/initdb)");
    bin_ = *bin;
    fs::create_directories(socket_);
    if (as_root()) {
        run({"/usr/bin/chown", "-R", "postgres:postgres", dir_.string()});
        // The server's user must reach its folder: a test's temporary folder
        // (mkdtemp, 0700) above it gets search permission, nothing more.
        for (fs::path p = fs::absolute(dir_).parent_path(); p != p.root_path(); p = p.parent_path()) {
            struct stat st {};
            if (::stat(p.c_str(), &st) == 0 && st.st_uid == ::geteuid() && !(st.st_mode & S_IXOTH))
                ::chmod(p.c_str(), (st.st_mode & 07777) | S_IXOTH);
        }
    }
    fs::path pwfile = dir_ / "superuser-password";
    write_file(pwfile, std::string(kPassword) + "\n");
    if (as_root()) run({"/usr/bin/chown", "postgres:postgres", pwfile.string()});
    run({(bin_ / "initdb").string(), "-D", data_.string(), "-U", "postgres", "--auth-local=trust",
         "--auth-host=scram-sha-256", "--pwfile=" + pwfile.string(), "-E", "UTF8", "--locale=C", "--no-sync"});
    port_ = free_port();
    start();
    psql("CREATE ROLE qallow LOGIN PASSWORD '" + std::string(kPassword) + "'", "postgres");
    psql("CREATE DATABASE qallow OWNER qallow", "postgres");
}

PostgresServer::~PostgresServer() {
    try {
        stop();
    } catch (...) {
        // The server may already be gone; nothing to do in a destructor.
    }
}

std::string PostgresServer::run(const std::vector<std::string>& argv) const {
    std::vector<std::string> cmd;
    if (as_root() && argv[0] != "/usr/bin/chown") cmd = {"/usr/sbin/runuser", "-u", "postgres", "--"};
    cmd.insert(cmd.end(), argv.begin(), argv.end());
    fs::path logs = dir_ / "logs";
    fs::create_directories(logs);
    Result r = run_in(logs, cmd, std::chrono::seconds(120));
    if (r.status != 0) {
        std::string log = read_file(dir_ / "server.log");
        throw std::runtime_error(argv[0] + " failed (" + std::to_string(r.status) + "): " + r.out + r.err + "\nserver.log:\n" + log);
    }
    return r.out;
}

void PostgresServer::start() {
    if (running_) return;
    std::string opts = "-p " + std::to_string(port_) + " -k " + socket_.string() +
                       " -c listen_addresses=127.0.0.1 -c max_connections=50 -c shared_buffers=64MB";
    run({(bin_ / "pg_ctl").string(), "-D", data_.string(), "-l", (dir_ / "server.log").string(), "-w", "-t", "60", "-o", opts,
         "start"});
    running_ = true;
}

void PostgresServer::stop() {
    if (!running_) return;
    running_ = false;
    run({(bin_ / "pg_ctl").string(), "-D", data_.string(), "-m", "fast", "-w", "-t", "60", "stop"});
}

std::string PostgresServer::conninfo(const std::string& dbname) const {
    return "host=" + socket_.string() + " port=" + std::to_string(port_) + " dbname=" + dbname + " user=postgres";
}

std::string PostgresServer::tcp_conninfo(const std::string& dbname) const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + dbname + " user=qallow";
}

std::string PostgresServer::psql(const std::string& sql, const std::string& dbname) const {
    return run({(bin_ / "psql").string(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conninfo(dbname), "-c", sql});
}

} // namespace qallow::test
