// `qallow report` in the edge build (QALLOW_EDGE): left out to keep the edge
// small (edge/README.md).  Asking for it says where to run it instead.
#include "report/report.hpp"
#include "util/errors.hpp"

namespace qallow::report {

nlohmann::json collect(const Options&) { return nullptr; }

Written write_report(const Options& o) {
    throw InputError("report " + o.run_dir.string() +
                     ": the edge build has no report command; copy the run directory to a machine with the full "
                     "build and run `qallow report DIR` there (docs/report.md)");
}

} // namespace qallow::report
