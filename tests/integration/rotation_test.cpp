// Rotation of telemetry.csv and measurements.csv (docs/operations.md,
// "Rotation") through the real binary: a rotated run's files add up, row for
// row and byte for byte, to an unrotated run of the same seed; keep_files
// bounds them; `qallow report` reads them as one table; a resume from a
// checkpoint older than the last rotations continues the right file.
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>

namespace rotation_test {

using namespace qallow::itest;
using nlohmann::json;

const std::regex kRotated(R"((telemetry|measurements)\.(\d{20})\.csv)");

class RotationCli : public ::testing::Test {
protected:
    // configs/default.json with `records` added, beside the test's files.
    fs::path config(const json& records) {
        json c = json::parse(read_file(kConfigs / "default.json"));
        c["records"] = records;
        fs::path f = dir_ / ("rotating-" + std::to_string(++configs_) + ".json");
        write_file(f, c.dump(2));
        return f;
    }
    Result qallow(std::vector<std::string> args) {
        args.insert(args.begin(), {"run", "--no-ctl", "--no-progress", "--plugins", kPlugins.string(), "--state-dir",
                                   (dir_ / "state").string()});
        return run_qallow(dir_, args, 120s);
    }
    void run(const fs::path& config, const fs::path& out, uint64_t ticks, std::vector<std::string> extra = {}) {
        std::vector<std::string> a = {"--config", config.string(), "--out", out.string(), "--ticks", std::to_string(ticks)};
        a.insert(a.end(), extra.begin(), extra.end());
        Result r = qallow(a);
        ASSERT_EQ(r.status, 0) << r.err;
    }
    // The unrotated telemetry.csv of default.json for `ticks` ticks.
    std::string plain(uint64_t ticks) {
        run(kConfigs / "default.json", dir_ / "plain", ticks);
        return read_file(dir_ / "plain" / "telemetry.csv");
    }
    TempDir dir_;
    int configs_ = 0;
};

// `stem`'s rotated files in `out`, in name order (= tick order).
std::vector<fs::path> rotated(const fs::path& out, const std::string& stem) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(out)) {
        std::smatch m;
        std::string name = e.path().filename().string();
        if (std::regex_match(name, m, kRotated) && m[1] == stem) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

// Every file of the series, rotated then current, checked whole: the same
// header, every row complete with as many fields as the header, the first
// row's tick the one in the name.  Returns the rows after the headers.
std::string series_rows(const fs::path& out, const std::string& stem, const std::string& header) {
    std::vector<fs::path> files = rotated(out, stem);
    files.push_back(out / (stem + ".csv"));
    size_t fields = split(header, ',').size();
    std::string rows;
    for (const auto& f : files) {
        std::string text = read_file(f);
        EXPECT_EQ(text.substr(0, header.size() + 1), header + "\n") << f;
        EXPECT_TRUE(text.empty() || text.back() == '\n') << f << ": a torn last row";
        std::vector<std::string> lines = lines_of(text);
        for (size_t i = 1; i < lines.size(); ++i) EXPECT_EQ(split(lines[i], ',').size(), fields) << f << " line " << i + 1;
        std::smatch m;
        std::string name = f.filename().string();
        if (std::regex_match(name, m, kRotated) && lines.size() > 1) {
            EXPECT_EQ(std::stoull(m[2]), std::stoull(lines[1].substr(0, lines[1].find(',')))) << f;
        }
        rows += text.substr(std::min(text.size(), header.size() + 1));
    }
    return rows;
}

std::string header_line(const std::string& csv) { return csv.substr(0, csv.find('\n')); }
std::string rows_of(const std::string& csv) { return csv.substr(csv.find('\n') + 1); }

// The first ticks in the rotated names of a series.
std::vector<std::string> first_ticks(const fs::path& out, const std::string& stem) {
    std::vector<std::string> ticks;
    for (const auto& f : rotated(out, stem)) ticks.push_back(f.filename().string().substr(stem.size() + 1, 20));
    return ticks;
}

json report_data(const fs::path& dir, const fs::path& run) {
    Result r = run_qallow(dir, {"report", run.string()});
    EXPECT_EQ(r.status, 0) << r.err;
    std::string html = read_file(run / "report.html");
    const std::string open = "<script id=\"qallow-data\" type=\"application/json\">";
    size_t at = html.find(open);
    if (at == std::string::npos) return nullptr;
    at += open.size();
    json j = json::parse(html.substr(at, html.find("</script>", at) - at), nullptr, false);
    j["stdout"] = r.out;
    return j;
}

TEST_F(RotationCli, RotatedFilesAddUpToTheUnrotatedRunAndReportAsOne) {
    std::string expected = plain(400);
    fs::path out = dir_ / "rotated";
    run(config({{"rotate_bytes", 16384}}), out, 400);
    std::vector<fs::path> tele = rotated(out, "telemetry");
    ASSERT_GE(tele.size(), 3u) << "rows of ~500 bytes, 16 KiB files: a dozen rotations";
    EXPECT_EQ(read_file(tele.front()).substr(0, header_line(expected).size()), header_line(expected));
    EXPECT_EQ(series_rows(out, "telemetry", header_line(expected)), rows_of(expected)); // byte for byte
    // measurements.csv rotates after the same rows.  Its rows are
    // sample-and-hold, so fewer than the ticks, but each file runs through
    // the tick before the next file's first (its held row is written when
    // it rotates) and the last through tick 400.
    EXPECT_EQ(first_ticks(out, "measurements"), first_ticks(out, "telemetry"));
    std::string meas_header = header_line(read_file(out / "measurements.csv"));
    std::vector<std::string> meas_rows = lines_of(series_rows(out, "measurements", meas_header));
    ASSERT_FALSE(meas_rows.empty());
    std::vector<uint64_t> meas_ticks;
    for (const auto& row : meas_rows) meas_ticks.push_back(std::stoull(row.substr(0, row.find(','))));
    EXPECT_EQ(meas_ticks.front(), 1u);
    EXPECT_EQ(meas_ticks.back(), 400u);
    EXPECT_TRUE(std::is_sorted(meas_ticks.begin(), meas_ticks.end()) &&
                std::adjacent_find(meas_ticks.begin(), meas_ticks.end()) == meas_ticks.end());
    std::vector<fs::path> meas = rotated(out, "measurements");
    meas.push_back(out / "measurements.csv");
    for (size_t i = 0; i + 1 < meas.size(); ++i) {
        std::vector<std::string> lines = lines_of(read_file(meas[i])), next = lines_of(read_file(meas[i + 1]));
        ASSERT_GE(lines.size(), 2u) << meas[i];
        ASSERT_GE(next.size(), 2u) << meas[i + 1];
        EXPECT_EQ(std::stoull(lines.back().substr(0, lines.back().find(','))) + 1,
                  std::stoull(next[1].substr(0, next[1].find(','))))
            << meas[i] << " does not run through the tick before " << meas[i + 1] << "'s first";
    }

    json d = report_data(dir_, out);
    ASSERT_TRUE(d.is_object());
    EXPECT_EQ(d["telemetry"]["rows"], 400);
    EXPECT_EQ(d["telemetry"]["first_tick"], 1);
    EXPECT_EQ(d["telemetry"]["last_tick"], 400);
    EXPECT_EQ(d["telemetry"]["rotated_files"], tele.size());
    EXPECT_EQ(d["measurements"]["rows"], meas_rows.size());
    EXPECT_EQ(d["measurements"]["last_tick"], 400);
    EXPECT_CONTAINS(d["stdout"].get<std::string>(), "400 ticks");
}

TEST_F(RotationCli, KeepFilesLeavesTheNewestAndTheReportReadsWhatIsLeft) {
    std::string expected = plain(400);
    fs::path out = dir_ / "kept";
    run(config({{"rotate_bytes", 16384}, {"keep_files", 2}}), out, 400);
    EXPECT_EQ(rotated(out, "telemetry").size(), 2u);
    EXPECT_EQ(rotated(out, "measurements").size(), 2u);
    std::string rows = series_rows(out, "telemetry", header_line(expected));
    ASSERT_FALSE(rows.empty());
    ASSERT_LT(rows.size(), rows_of(expected).size());
    EXPECT_EQ(rows_of(expected).substr(rows_of(expected).size() - rows.size()), rows) << "not the run's tail";
    json d = report_data(dir_, out);
    ASSERT_TRUE(d.is_object());
    EXPECT_EQ(d["telemetry"]["rows"], lines_of(rows).size());
    EXPECT_EQ(d["telemetry"]["last_tick"], 400);
}

// A checkpoint at 200, the run on to 400 rotating several times: the
// resume makes the file holding tick 200 current again, cut after it.
TEST_F(RotationCli, ResumeFromACheckpointBeforeTheLastRotations) {
    std::string expected = plain(400);
    fs::path out = dir_ / "part";
    run(config({{"rotate_bytes", 16384}}), out, 400, {"--checkpoint-every", "100"});
    fs::path at200 = out / "checkpoints" / "checkpoint-t000001-00000000000000000200.qck";
    ASSERT_TRUE(fs::exists(at200));
    size_t before = rotated(out, "telemetry").size();
    ASSERT_GE(before, 3u);
    Result r = qallow({"--resume", at200.string(), "--ticks", "400"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_CONTAINS(r.err, "resuming after tick 200 in telemetry.");
    EXPECT_EQ(series_rows(out, "telemetry", header_line(expected)), rows_of(expected));
    EXPECT_EQ(first_ticks(out, "measurements"), first_ticks(out, "telemetry"));
    EXPECT_EQ(read_json(out / "summary.json")["state_digest"], read_json(dir_ / "plain" / "summary.json")["state_digest"]);
}

TEST_F(RotationCli, ABadRecordsSectionIsNamedAndNothingRuns) {
    fs::path out = dir_ / "bad";
    Result r = qallow({"--config", config({{"rotate_bytes", 10}}).string(), "--out", out.string(), "--ticks", "5"});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_CONTAINS(r.err, "/records/rotate_bytes: 10 is out of range");
    EXPECT_FALSE(fs::exists(out / "telemetry.csv"));
}

} // namespace rotation_test
