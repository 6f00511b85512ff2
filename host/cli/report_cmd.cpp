// `qallow report <run-dir> [-o FILE]` (docs/report.md): a run's output
// directory as one self-contained HTML page.  The work is report/'s.
#include "cli/command.hpp"
#include "report/report.hpp"
#include "util/errors.hpp"

#include <cstdio>
#include <memory>
#include <string>

namespace qallow::cli {
namespace {

struct ReportArgs {
    std::string run_dir, out;
    size_t max_points = report::kDefaultMaxPoints;
};

int run_report(const ReportArgs& a) {
    report::Options o;
    o.run_dir = a.run_dir;
    if (!a.out.empty()) o.out = a.out;
    o.max_points = a.max_points;
    try {
        report::Written w = report::write_report(o);
        std::printf("%s: %llu ticks, %zu series, %zu points drawn, %zu bytes\n", w.file.c_str(),
                    static_cast<unsigned long long>(w.rows), w.series, w.points, w.bytes);
        return 0;
    } catch (const InputError& e) { // bad input: names the file and line
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) { // the report could not be written
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 1;
    }
}

} // namespace

void add_report(CLI::App& app, Commands& out) {
    auto a = std::make_shared<ReportArgs>();
    auto* cmd = app.add_subcommand("report", "a run's output directory as one self-contained HTML file (opens offline)");
    cmd->add_option("run-dir", a->run_dir, "the run's output directory (qallow run --out)")->required();
    cmd->add_option("-o,--out", a->out, "the HTML file to write (default <run-dir>/report.html)");
    cmd->add_option("--max-points", a->max_points, "the most points drawn per series (min/max buckets beyond it)")
        ->check(CLI::Range(size_t(10), size_t(1000000)))
        ->capture_default_str();
    out.push_back({cmd, [a] { return run_report(*a); }});
}

} // namespace qallow::cli
