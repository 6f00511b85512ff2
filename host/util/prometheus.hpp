// Prometheus text exposition format 0.0.4, written by hand: the format is a
// few lines of text and no Debian-packaged client library fits a loop that
// must not allocate per tick (docs/DECISIONS.md, "Metrics without a client
// library").  Every part of the host that exports metrics writes with these.
#pragma once

#include <string>
#include <string_view>

namespace qallow::prom {

// A label value: backslash, double quote and newline escaped.
std::string label(std::string_view v);
// Shortest text that reads back to the same double; +Inf, -Inf, NaN as Prometheus spells them.
std::string number(double v);
// The HELP and TYPE lines of one family.
void family(std::string& out, std::string_view name, std::string_view type, std::string_view help);
// A family of one unlabelled sample.
void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help, double value);

// The standard process families of the official clients (process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_max_fds, process_start_time_seconds), read from /proc/self.  A figure
// that cannot be read is left out, never made up.
std::string process_metrics();

} // namespace qallow::prom
