// The page itself: template.html (embedded at build time) with its style,
// Chart.js, the data and the page's script filled in, and the file written
// whole or not at all.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <string_view>

namespace qallow::report {

// `data` as JSON that cannot end the <script> element holding it: every
// '<' (only ever inside a JSON string) becomes \u003c, so no "</script>"
// or "<!--" survives; invalid UTF-8 from a file becomes U+FFFD.
std::string script_json(const nlohmann::json& data);

// Text for an HTML element or attribute: & < > " ' as entities.
std::string html_escaped(std::string_view s);

// The whole page.  `chartjs` is the library's text, inlined as it is (an
// InputError naming `chartjs_file` when it holds "</script", which would
// end its element early).
std::string render_html(const nlohmann::json& data, const std::string& chartjs, const std::filesystem::path& chartjs_file,
                        const std::string& title);

// Writes `text` to a temporary file beside `file`, then renames it over
// `file`: a reader never sees half a report, and a failure leaves nothing.
void write_atomically(const std::filesystem::path& file, const std::string& text);

} // namespace qallow::report
