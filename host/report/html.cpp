#include "report/html.hpp"

#include "report/template_text.hpp"
#include "util/errors.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace qallow::report {

std::string script_json(const nlohmann::json& data) {
    std::string text = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::string out;
    out.reserve(text.size() + text.size() / 64);
    for (char c : text) {
        if (c == '<')
            out += "\\u003c";
        else
            out += c;
    }
    return out;
}

std::string html_escaped(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
        }
    }
    return out;
}

namespace {

bool holds_script_end(const std::string& js) {
    static constexpr std::string_view kEnd = "</script";
    auto it = std::search(js.begin(), js.end(), kEnd.begin(), kEnd.end(),
                          [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
    return it != js.end();
}

} // namespace

std::string render_html(const nlohmann::json& data, const std::string& chartjs, const std::filesystem::path& chartjs_file,
                        const std::string& title) {
    if (holds_script_end(chartjs))
        throw InputError(chartjs_file.string() + ": holds \"</script\", so it cannot be inlined in a page; expected "
                         "Chart.js 3.x's chart.min.js (Debian: libjs-chart.js)");
    // The template's markers, left to right; what is put in is never
    // searched again, so text from the data cannot inject a marker.
    const std::pair<std::string_view, std::string> fills[] = {
        {"@QALLOW_TITLE@", html_escaped(title)}, {"@QALLOW_CSS@", std::string(embedded::template_css)},
        {"@QALLOW_CHARTJS@", chartjs},           {"@QALLOW_DATA@", script_json(data)},
        {"@QALLOW_APP@", std::string(embedded::template_js)}};
    std::string_view tpl = embedded::template_html;
    std::string out;
    out.reserve(tpl.size() + chartjs.size() + fills[3].second.size() + 65536);
    size_t pos = 0;
    for (size_t at; (at = tpl.find("@QALLOW_", pos)) != std::string_view::npos;) {
        auto fill = std::find_if(std::begin(fills), std::end(fills),
                                 [&](const auto& f) { return tpl.substr(at, f.first.size()) == f.first; });
        if (fill == std::end(fills)) throw std::logic_error("template.html: an unknown marker at byte " + std::to_string(at));
        out.append(tpl.substr(pos, at - pos)).append(fill->second);
        pos = at + fill->first.size();
    }
    out.append(tpl.substr(pos));
    return out;
}

void write_atomically(const std::filesystem::path& file, const std::string& text) {
    std::string name = ".";
    name.append(file.filename().string()).append(".XXXXXX"); // hidden, and never a *.html a server would list
    std::string tmp = (file.parent_path() / name).string();
    int fd = ::mkstemp(tmp.data());
    if (fd < 0)
        throw std::runtime_error(file.string() + ": cannot create a file beside it: " + std::strerror(errno));
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += size_t(n);
    }
    int err = done == text.size() ? 0 : errno ? errno : EIO;
    if (!err && ::fchmod(fd, 0644) != 0) err = errno; // mkstemp's 0600 would hide the report from a web server
    if (::close(fd) != 0 && !err) err = errno;
    if (!err && std::rename(tmp.c_str(), file.c_str()) != 0) err = errno;
    if (err) {
        ::unlink(tmp.c_str());
        throw std::runtime_error(file.string() + ": cannot write: " + std::strerror(err));
    }
}

} // namespace qallow::report
