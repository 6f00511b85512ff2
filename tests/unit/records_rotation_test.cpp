// records/rotation: telemetry.csv and measurements.csv rotated between rows
// and expired oldest first, a resume that continues a rotated file, the
// report reading a rotated series as one table, and the "records" config
// section's refusals.  Real files in a temporary folder; time is passed in
// (the age rule) or set on the files (expiry), never waited for.
#include "core/config.hpp"
#include "records/rotation.hpp"
#include "records/run_files.hpp"
#ifdef QALLOW_TEST_REPORT // the edge build has no report (edge/README.md)
#include "report/run_dir.hpp"
#endif
#include "util/errors.hpp"
#include "host_test_support.hpp"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <set>

namespace records_rotation_test {

using namespace qallow;
using qallow::test::error_of;
using qallow::test::lines_of;
using qallow::test::read_file;
using qallow::test::TempDir;
using qallow::test::write_file;
namespace fs = std::filesystem;

// Two model signals and one measured one: both series, as a run with the energy plugin has.
Signals two_series() {
    Signals s;
    s.declare("a.x", 0, 0);
    s.declare("a.y", 0, 0);
    s.declare("e.joules", QALLOW_SIGNAL_MEASURED, 1);
    return s;
}

std::vector<double> values_of(uint64_t tick) { return {tick * 0.5, 1.0 / double(tick), double(tick % 7)}; }

// Rows `from`..`to` through one TrialFiles.
void write_rows(TrialFiles& files, uint64_t from, uint64_t to) {
    for (uint64_t t = from; t <= to; ++t) files.row(t, values_of(t).data());
    files.flush();
}

// The unrotated file of `stem` for ticks 1..n: what every rotated series must add up to.
std::string unrotated(const fs::path& dir, const std::string& stem, uint64_t n) {
    Signals s = two_series();
    {
        TrialFiles f(dir, s, std::nullopt);
        write_rows(f, 1, n);
    }
    return read_file(dir / (stem + ".csv"));
}

std::vector<fs::path> rotated_paths(const fs::path& dir, const std::string& stem) {
    std::vector<fs::path> out;
    for (const auto& r : list_rotated(dir, stem)) out.push_back(r.path);
    return out;
}

// Every file of the series (rotated, then current): each starts with
// `header`; the rows, concatenated.
std::string concatenated_rows(const fs::path& dir, const std::string& stem, const std::string& header) {
    std::vector<fs::path> files = rotated_paths(dir, stem);
    files.push_back(dir / (stem + ".csv"));
    std::string rows;
    for (const auto& f : files) {
        std::string text = read_file(f);
        EXPECT_EQ(text.compare(0, header.size(), header), 0) << f << " does not start with the header";
        EXPECT_TRUE(text.empty() || text.back() == '\n') << f << " ends in a torn row";
        rows += text.substr(std::min(header.size(), text.size()));
    }
    return rows;
}

std::string header_of(const std::string& text) { return text.substr(0, text.find('\n') + 1); }

class Rotation_ : public ::testing::Test {
protected:
    fs::path dir(const std::string& name) {
        fs::path d = tmp_ / name;
        fs::create_directories(d);
        return d;
    }
    // A fresh run of ticks 1..last into `d` with `c`, its files closed again.
    void run(const fs::path& d, const RecordsConfig& c, uint64_t last) {
        TrialFiles f(d, signals_, std::nullopt, c);
        write_rows(f, 1, last);
    }
    TempDir tmp_;
    Signals signals_ = two_series();
};

TEST(RotationNames, SortInTickOrderAndReadBack) {
    EXPECT_EQ(rotated_name("telemetry", 1000), "telemetry.00000000000000001000.csv");
    EXPECT_EQ(rotated_name("measurements", UINT64_MAX), "measurements.18446744073709551615.csv");
    EXPECT_LT(rotated_name("telemetry", 999), rotated_name("telemetry", 1000)); // as text, as the tools sort
    EXPECT_EQ(rotated_tick("telemetry.00000000000000001000.csv", "telemetry"), 1000u);
    for (const char* other : {"telemetry.csv", "telemetry.1000.csv", "telemetry.0000000000000000100x.csv",
                              "measurements.00000000000000001000.csv", "telemetry.00000000000000001000.csv.tmp",
                              "telemetry.99999999999999999999.csv"})
        EXPECT_FALSE(rotated_tick(other, "telemetry")) << other;
}

// The report repeats the naming rule (it links util only): both must agree.
#ifdef QALLOW_TEST_REPORT
TEST_F(Rotation_, TheReportListsWhatRecordsWrites) {
    fs::path d = dir("names");
    for (uint64_t t : {1ull, 12ull, 7ull, 100000000000ull}) write_file(d / rotated_name("telemetry", t), "tick\n");
    write_file(d / "telemetry.csv", "tick\n");
    write_file(d / "telemetry.1.csv", "tick\n");
    write_file(d / rotated_name("measurements", 3), "tick\n");
    std::vector<fs::path> files = report::series_files(d / "telemetry.csv");
    std::vector<fs::path> expected = rotated_paths(d, "telemetry");
    expected.push_back(d / "telemetry.csv");
    EXPECT_EQ(files, expected);
    ASSERT_EQ(files.size(), 5u);
    EXPECT_EQ(files[1].filename(), rotated_name("telemetry", 7));
}
#endif

TEST_F(Rotation_, BySizeBetweenRowsAtTheSameTicksForBothSeries) {
    std::string tele = unrotated(dir("plain"), "telemetry", 200);
    std::string meas = read_file(tmp_ / "plain" / "measurements.csv");
    fs::path d = dir("rotated");
    RecordsConfig c;
    c.rotate_bytes = 1024;
    {
        TrialFiles f(d, signals_, std::nullopt, c);
        write_rows(f, 1, 200);
        ASSERT_NE(f.rotation(), nullptr);
        EXPECT_GT(f.rotation()->rotations(), 3u);
    }
    auto t = list_rotated(d, "telemetry"), m = list_rotated(d, "measurements");
    ASSERT_GT(t.size(), 3u);
    EXPECT_EQ(t.front().first_tick, 1u);
    // The same first ticks: a rotated telemetry file and its measurements file cover the same rows.
    ASSERT_EQ(t.size(), m.size());
    for (size_t i = 0; i < t.size(); ++i) EXPECT_EQ(t[i].first_tick, m[i].first_tick);
    size_t longest_row = 0;
    for (const auto& line : lines_of(tele)) longest_row = std::max(longest_row, line.size() + 1);
    for (const auto& r : t) {
        uint64_t size = fs::file_size(r.path);
        EXPECT_LT(size, c.rotate_bytes + longest_row) << r.path; // rotated after the row that reached the limit
        EXPECT_EQ(lines_of(read_file(r.path))[1].substr(0, std::to_string(r.first_tick).size() + 1),
                  std::to_string(r.first_tick) + ",")
            << "named by its first row";
    }
    EXPECT_EQ(concatenated_rows(d, "telemetry", header_of(tele)), tele.substr(header_of(tele).size()));
    EXPECT_EQ(concatenated_rows(d, "measurements", header_of(meas)), meas.substr(header_of(meas).size()));
}

TEST_F(Rotation_, ByAgeWhenFlushedLate) {
    fs::path d = dir("age");
    RecordsConfig c;
    c.rotate_age_s = 60;
    Signals s = two_series();
    CsvWriter tele(d / "telemetry.csv", s, false), meas(d / "measurements.csv", s, true);
    Rotation rot(c, d, &tele, &meas);
    auto start = std::chrono::steady_clock::now();
    rot.on_flush(start + std::chrono::seconds(61)); // no rows yet: nothing to rotate
    EXPECT_TRUE(list_rotated(d, "telemetry").empty());
    for (uint64_t t = 1; t <= 5; ++t) tele.write_row(t, values_of(t).data()), meas.write_row(t, values_of(t).data());
    rot.after_row(); // no size rule
    rot.on_flush(start + std::chrono::seconds(30));
    EXPECT_TRUE(list_rotated(d, "telemetry").empty()) << "rotated before its age";
    rot.on_flush(start + std::chrono::seconds(61));
    ASSERT_EQ(rotated_paths(d, "telemetry"), std::vector<fs::path>{d / rotated_name("telemetry", 1)});
    ASSERT_EQ(rotated_paths(d, "measurements"), std::vector<fs::path>{d / rotated_name("measurements", 1)});
    EXPECT_EQ(lines_of(read_file(d / rotated_name("telemetry", 1))).size(), 6u);
    // The clock restarts with the new file.
    for (uint64_t t = 6; t <= 7; ++t) tele.write_row(t, values_of(t).data()), meas.write_row(t, values_of(t).data());
    rot.on_flush(start + std::chrono::seconds(100));
    EXPECT_EQ(list_rotated(d, "telemetry").size(), 1u);
    rot.on_flush(start + std::chrono::seconds(122));
    EXPECT_EQ(list_rotated(d, "telemetry").back().first_tick, 6u);
}

TEST_F(Rotation_, KeepFilesExpiresTheOldestAndNeverTheCurrentFile) {
    std::string tele = unrotated(dir("plain"), "telemetry", 300);
    fs::path d = dir("keep");
    RecordsConfig c;
    c.rotate_bytes = 1024;
    c.keep_files = 3;
    {
        TrialFiles f(d, signals_, std::nullopt, c);
        write_rows(f, 1, 300);
        EXPECT_GT(f.rotation()->rotations(), 5u);
    }
    EXPECT_EQ(list_rotated(d, "telemetry").size(), 3u);
    EXPECT_EQ(list_rotated(d, "measurements").size(), 3u);
    // What is left is the run's tail: the unrotated file's last rows, whole.
    std::string rows = concatenated_rows(d, "telemetry", header_of(tele));
    ASSERT_FALSE(rows.empty());
    EXPECT_EQ(tele.substr(tele.size() - rows.size()), rows);
    EXPECT_EQ(tele[tele.size() - rows.size() - 1], '\n');
}

TEST_F(Rotation_, MaxTotalBytesCountsBothSeriesAndTheCurrentFiles) {
    fs::path d = dir("total");
    RecordsConfig c;
    c.rotate_bytes = 1024;
    c.max_total_bytes = 4096;
    run(d, c, 300);
    uint64_t total = 0;
    for (const auto& e : fs::directory_iterator(d)) total += fs::file_size(e.path());
    EXPECT_LE(total, c.max_total_bytes);
    EXPECT_FALSE(list_rotated(d, "telemetry").empty());
    EXPECT_TRUE(fs::exists(d / "telemetry.csv"));
}

TEST_F(Rotation_, MaxAgeByModificationTimeOldestFirst) {
    fs::path d = dir("maxage");
    for (uint64_t t : {1, 11, 21, 31}) {
        write_file(d / rotated_name("telemetry", t), "tick,a.x\n" + std::to_string(t) + ",1\n");
        write_file(d / rotated_name("measurements", t), "tick,e.joules\n" + std::to_string(t) + ",1\n");
    }
    write_file(d / "telemetry.csv", "tick,a.x\n41,1\n");
    auto now = fs::file_time_type::clock::now();
    auto at = [&](uint64_t t, std::chrono::seconds age) {
        fs::last_write_time(d / rotated_name("telemetry", t), now - age);
        fs::last_write_time(d / rotated_name("measurements", t), now - age);
    };
    at(1, std::chrono::hours(50));
    at(11, std::chrono::hours(49));
    at(21, std::chrono::hours(1));
    at(31, std::chrono::hours(60)); // old, but newer files come before it: kept, so no gap opens
    fs::last_write_time(d / "telemetry.csv", now - std::chrono::hours(100)); // the current file: never
    RecordsConfig c;
    c.rotate_bytes = 1024;
    c.max_age_s = 48 * 3600;
    auto removed = expire(d, c, {"telemetry", "measurements"}, now);
    EXPECT_EQ(removed.size(), 4u);
    std::vector<uint64_t> left;
    for (const auto& r : list_rotated(d, "telemetry")) left.push_back(r.first_tick);
    EXPECT_EQ(left, (std::vector<uint64_t>{21, 31}));
    EXPECT_EQ(list_rotated(d, "measurements").size(), 2u);
    EXPECT_TRUE(fs::exists(d / "telemetry.csv"));
}

TEST_F(Rotation_, AFreshRunRemovesAnEarlierRunsRotatedFiles) {
    fs::path d = dir("fresh");
    write_file(d / rotated_name("telemetry", 1), "old\n");
    write_file(d / rotated_name("measurements", 1), "old\n");
    write_file(d / "telemetry.1.csv", "not ours\n");
    {
        TrialFiles f(d, signals_, std::nullopt); // no rotation configured: still not this run's rows
        write_rows(f, 1, 3);
    }
    EXPECT_TRUE(list_rotated(d, "telemetry").empty());
    EXPECT_TRUE(list_rotated(d, "measurements").empty());
    EXPECT_TRUE(fs::exists(d / "telemetry.1.csv"));
}

// A resume at `at` of a rotated run of 200 rows: the rows after it are cut
// wherever they are, and rows at+1..200 written again give the unrotated file.
void resume_at(const fs::path& d, const RecordsConfig& c, uint64_t at, const std::string& tele) {
    Signals s = two_series();
    {
        TrialFiles f(d, s, std::nullopt, c);
        write_rows(f, 1, 200);
    }
    {
        TrialFiles f(d, s, at, c);
        std::string cur = read_file(d / "telemetry.csv");
        ASSERT_GT(cur.size(), header_of(tele).size()) << "the file holding tick " << at << " is current again";
        std::string last_row = lines_of(cur).back();
        EXPECT_EQ(last_row.substr(0, last_row.find(',')), std::to_string(at));
        for (const auto& r : list_rotated(d, "telemetry")) EXPECT_LE(r.first_tick, at) << "a later file survived";
        write_rows(f, at + 1, 200);
    }
    EXPECT_EQ(concatenated_rows(d, "telemetry", header_of(tele)), tele.substr(header_of(tele).size()));
    for (const auto& r : list_rotated(d, "measurements")) EXPECT_TRUE(fs::exists(d / rotated_name("telemetry", r.first_tick)));
}

TEST_F(Rotation_, ResumeWhenTheCheckpointTickIsInARotatedFile) {
    std::string tele = unrotated(dir("plain"), "telemetry", 200);
    RecordsConfig c;
    c.rotate_bytes = 1024;
    resume_at(dir("middle"), c, 37, tele);
    // At a file's last row: that file is current again, the header-only one after it goes.
    fs::path probe = dir("probe");
    {
        TrialFiles f(probe, signals_, std::nullopt, c);
        write_rows(f, 1, 200);
    }
    auto r = list_rotated(probe, "telemetry");
    ASSERT_GE(r.size(), 3u);
    resume_at(dir("boundary"), c, r[2].first_tick - 1, tele);
    resume_at(dir("current"), c, 199, tele); // in the current file: nothing renamed
}

TEST_F(Rotation_, ResumeRefusesWhenTheCheckpointRowsWereExpired) {
    fs::path d = dir("expired");
    RecordsConfig c;
    c.rotate_bytes = 1024;
    c.keep_files = 2;
    run(d, c, 200);
    auto kept = list_rotated(d, "telemetry");
    ASSERT_EQ(kept.size(), 2u);
    std::string e = error_of<std::runtime_error>([&] { TrialFiles f(d, signals_, uint64_t(3), c); });
    EXPECT_EQ(e, (d / "telemetry.csv").string() + ": the rows through tick 3 were expired: the oldest rotated file kept, " +
                     kept.front().path.filename().string() + ", starts at tick " + std::to_string(kept.front().first_tick));
    EXPECT_EQ(list_rotated(d, "telemetry").size(), 2u) << "a refused resume changes nothing";
}

#ifdef QALLOW_TEST_REPORT
TEST_F(Rotation_, TheReportReadsARotatedSeriesAsOneTable) {
    unrotated(dir("plain"), "telemetry", 300);
    fs::path d = dir("report");
    RecordsConfig c;
    c.rotate_bytes = 2048;
    run(d, c, 300);
    report::ReadOptions ro;
    ro.max_points = 100000;
    report::SignalTable plain = report::read_signals(tmp_ / "plain" / "telemetry.csv", ro);
    report::SignalTable t = report::read_signals(d / "telemetry.csv", ro);
    EXPECT_EQ(t.rows, 300u);
    EXPECT_EQ(t.first_tick, 1u);
    EXPECT_EQ(t.last_tick, 300u);
    EXPECT_EQ(t.rotated, list_rotated(d, "telemetry").size());
    ASSERT_EQ(t.series.size(), plain.series.size());
    for (size_t i = 0; i < t.series.size(); ++i) {
        EXPECT_EQ(t.series[i].ticks, plain.series[i].ticks);
        EXPECT_EQ(t.series[i].values, plain.series[i].values);
    }
    // Without the current file (a crash between rename and reopen) the rotated ones still read.
    uint64_t current_rows = lines_of(read_file(d / "telemetry.csv")).size() - 1;
    fs::remove(d / "telemetry.csv");
    EXPECT_EQ(report::read_signals(d / "telemetry.csv", ro).rows, t.rows - current_rows);
}
#endif

#ifdef QALLOW_TEST_REPORT
TEST_F(Rotation_, TheReportNamesAMismatchedOrOverlappingRotatedFile) {
    fs::path d = dir("bad");
    write_file(d / rotated_name("telemetry", 1), "tick,a.x\n1,1\n2,2\n");
    write_file(d / rotated_name("telemetry", 3), "tick,a.y\n3,1\n");
    write_file(d / "telemetry.csv", "tick,a.x\n4,1\n");
    report::ReadOptions ro;
    std::string e = error_of<InputError>([&] { report::read_signals(d / "telemetry.csv", ro); });
    EXPECT_EQ(e, (d / rotated_name("telemetry", 3)).string() + ":1: the header differs from " +
                     rotated_name("telemetry", 1) + "'s; every rotated file of a series has the same header");
    write_file(d / rotated_name("telemetry", 3), "tick,a.x\n2,1\n");
    e = error_of<InputError>([&] { report::read_signals(d / "telemetry.csv", ro); });
    EXPECT_EQ(e, (d / rotated_name("telemetry", 3)).string() +
                     ":2: tick 2 is not after tick 2, the last of the file before it; the rotated files of a series "
                     "do not overlap");
}
#endif

// ---- the "records" config section ----------------------------------------------

std::string records_error(const std::string& records) {
    return error_of<InputError>([&] {
        parse_config(R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "phase12"}], "records": )" + records + "}",
                     "c.json", "/base");
    });
}

TEST(RecordsConfig_, DefaultsRotateNothing) {
    Config c = parse_config(R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "phase12"}]})", "c.json", "/base");
    EXPECT_FALSE(c.records.rotates());
    EXPECT_EQ(c.records.keep_files, 0u);
    c = parse_config(R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "phase12"}], "records": {}})", "c.json", "/base");
    EXPECT_FALSE(c.records.rotates());
}

TEST(RecordsConfig_, ReadsEveryField) {
    Config c = parse_config(R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "phase12"}], "records":
        {"rotate_bytes": 16777216, "rotate_age_s": 86400, "keep_files": 14, "max_age_s": 604800,
         "max_total_bytes": 268435456}})",
                            "c.json", "/base");
    EXPECT_TRUE(c.records.rotates());
    EXPECT_EQ(c.records.rotate_bytes, 16777216u);
    EXPECT_EQ(c.records.rotate_age_s, 86400u);
    EXPECT_EQ(c.records.keep_files, 14u);
    EXPECT_EQ(c.records.max_age_s, 604800u);
    EXPECT_EQ(c.records.max_total_bytes, 268435456u);
}

TEST(RecordsConfig_, RefusalsNameThePointerAndWhatIsAllowed) {
    EXPECT_EQ(records_error("[]"), "c.json: /records: expected an object, got []");
    EXPECT_EQ(records_error(R"({"rotate_size": 1})"),
              "c.json: /records/rotate_size: unknown key; allowed keys here: rotate_bytes, rotate_age_s, keep_files, "
              "max_age_s, max_total_bytes");
    EXPECT_EQ(records_error(R"({"rotate_bytes": 100})"),
              "c.json: /records/rotate_bytes: 100 is out of range; allowed: bytes a telemetry or measurements file "
              "reaches before it is rotated: a whole number in [1024, 1099511627776]");
    EXPECT_EQ(records_error(R"({"rotate_bytes": "16M"})"),
              "c.json: /records/rotate_bytes: expected bytes a telemetry or measurements file reaches before it is "
              "rotated: a whole number in [1024, 1099511627776], got \"16M\"");
    EXPECT_EQ(records_error(R"({"rotate_age_s": 0})"),
              "c.json: /records/rotate_age_s: 0 is out of range; allowed: seconds a file is written to before it is "
              "rotated: a whole number in [1, 316224000]");
    EXPECT_EQ(records_error(R"({"rotate_bytes": 4096, "keep_files": -1})"),
              "c.json: /records/keep_files: expected rotated files kept per series: a whole number in [1, 1000000], got -1");
    EXPECT_EQ(records_error(R"({"rotate_bytes": 4096, "max_age_s": 1.5})"),
              "c.json: /records/max_age_s: expected seconds since a rotated file was last written before it is "
              "deleted: a whole number in [1, 316224000], got 1.5");
    EXPECT_EQ(records_error(R"({"rotate_bytes": 4096, "max_total_bytes": 10})"),
              "c.json: /records/max_total_bytes: 10 is out of range; allowed: bytes of rotated and current files "
              "together: a whole number in [1024, 1125899906842624]");
    EXPECT_EQ(records_error(R"({"keep_files": 3})"),
              "c.json: /records/keep_files: expires rotated files, but nothing rotates them; allowed: with "
              "/records/rotate_bytes or /records/rotate_age_s");
    EXPECT_EQ(records_error(R"({"max_total_bytes": 4096})").substr(0, 32), "c.json: /records/max_total_bytes");
}

// measurements.csv is sample-and-hold (records/telemetry.hpp): a row only
// when a value changed, the held row written at a flush, a rotation and the
// writer's end, so every file runs through the last tick it was given.
class HeldRows : public ::testing::Test {
protected:
    // Tick t's values with e.joules = joules[t - 1]; the model columns change every tick.
    static std::vector<double> row(uint64_t t, double joules) { return {t * 0.5, 1.0 / double(t), joules}; }
    static void write(CsvWriter& w, uint64_t from, const std::vector<double>& joules) {
        for (size_t i = 0; i < joules.size(); ++i) w.write_row(from + i, row(from + i, joules[i]).data());
    }
    TempDir tmp_;
    Signals signals_ = two_series();
};

TEST_F(HeldRows, AMeasuredRowIsWrittenOnlyWhenAValueChangesAndTheLastAtAFlush) {
    fs::path tele = tmp_ / "telemetry.csv", meas = tmp_ / "measurements.csv";
    {
        CsvWriter t(tele, signals_, false), m(meas, signals_, true);
        const std::vector<double> joules = {1, 1, 1, 2, 2, 3, 3, 3, 3, 3};
        write(t, 1, joules);
        write(m, 1, joules);
        t.flush();
        m.flush();
        EXPECT_EQ(read_file(meas), "tick,e.joules\n1,1\n4,2\n6,3\n10,3\n");
        EXPECT_EQ(lines_of(read_file(tele)).size(), 11u) << "telemetry.csv keeps a row every tick";
        EXPECT_EQ(m.bytes(), fs::file_size(meas));
        // After a flush the held row is the flushed one: no second copy of tick 10.
        write(m, 11, {3, 3});
        m.flush();
        write(m, 13, {3, 4, 4});
    } // the writer's end writes tick 15's held row
    EXPECT_EQ(read_file(meas), "tick,e.joules\n1,1\n4,2\n6,3\n10,3\n12,3\n14,4\n15,4\n");
}

TEST_F(HeldRows, ARotatedFileEndsWithItsHeldRowAndTheNextStartsWithAWholeOne) {
    fs::path meas = tmp_ / "measurements.csv";
    CsvWriter m(meas, signals_, true);
    write(m, 1, {5, 5, 5, 5});
    m.rotate_to(tmp_ / rotated_name("measurements", 1));
    write(m, 5, {5, 5, 6});
    m.flush();
    EXPECT_EQ(read_file(tmp_ / rotated_name("measurements", 1)), "tick,e.joules\n1,5\n4,5\n");
    EXPECT_EQ(read_file(meas), "tick,e.joules\n5,5\n7,6\n");
}

TEST_F(HeldRows, AResumeCutsAfterTheCheckpointsTickAndWritesItsFirstRowWhole) {
    fs::path meas = tmp_ / "measurements.csv";
    {
        CsvWriter m(meas, signals_, true);
        write(m, 1, {1, 1, 1});
        m.flush(); // a checkpoint at tick 3 flushes first (runner.hpp)
        write(m, 4, {1, 2, 2, 2});
    }
    ASSERT_EQ(read_file(meas), "tick,e.joules\n1,1\n3,1\n5,2\n7,2\n");
    {
        CsvWriter m(meas, signals_, true, 3, false);
        EXPECT_TRUE(m.appended());
        write(m, 4, {1, 1});
    }
    EXPECT_EQ(read_file(meas), "tick,e.joules\n1,1\n3,1\n4,1\n5,1\n");
}

#ifdef QALLOW_TEST_REPORT
// The report's cumulative joules of a held series count a row once for every
// tick it holds, across a rotation too: what the every-tick file summed.
TEST_F(HeldRows, TheReportsCumulativeJoulesCountEveryHeldTick) {
    const std::vector<double> joules = {0.25, 0.25, 0.25, 0.5, 0.5, 1e-3, 1e-3, 1e-3, 1e-3, 2};
    {
        CsvWriter m(tmp_ / "measurements.csv", signals_, true);
        write(m, 1, {joules.begin(), joules.begin() + 7});
        m.rotate_to(tmp_ / rotated_name("measurements", 1));
        write(m, 8, {joules.begin() + 7, joules.end()});
    }
    report::ReadOptions ro;
    ro.held = true;
    report::SignalTable t = report::read_signals(tmp_ / "measurements.csv", ro);
    EXPECT_TRUE(t.held);
    EXPECT_EQ(t.rows, 6u); // 1, 4, 6, 7 | 8, 10
    EXPECT_EQ(t.last_tick, 10u);
    ASSERT_EQ(t.derived.size(), 1u);
    double sum = 0;
    for (double j : joules) sum += j;
    EXPECT_DOUBLE_EQ(t.derived[0].values.back(), sum);
    EXPECT_EQ(t.derived[0].ticks, (std::vector<uint64_t>{1, 4, 6, 7, 8, 10}));
    EXPECT_DOUBLE_EQ(t.derived[0].values[1], 0.25 * 3 + 0.5); // ticks 2 and 3 held tick 1's
    // Read as an every-tick file, the held ticks would count for nothing.
    ro.held = false;
    EXPECT_DOUBLE_EQ(report::read_signals(tmp_ / "measurements.csv", ro).derived[0].values.back(),
                     0.25 + 0.5 + 1e-3 * 3 + 2);
}
#endif

// The edge's shipped configs rotate (an edge at 100 ms ticks writes ~260 MB a day).
TEST(RecordsConfig_, TheEdgeConfigsRotateAndExpire) {
    for (const char* rel : {"configs/edge.json", "edge/package/edge.json"}) {
        Config c = load_config(fs::path(QALLOW_SOURCE_DIR) / rel);
        EXPECT_TRUE(c.records.rotates()) << rel;
        EXPECT_GT(c.records.keep_files, 0u) << rel;
        EXPECT_GT(c.records.max_total_bytes, c.records.rotate_bytes) << rel;
        EXPECT_GT(c.records.max_age_s, 0u) << rel;
    }
}

// A column whose value has the same bits as an earlier column's in the same
// row takes that column's text (records/telemetry.cpp, put_text): the file
// must read exactly as if every value had been formatted on its own, while
// columns change apart, together, to -0.0, NaN and back.
TEST(TwinColumns, AColumnEqualToAnEarlierOneReadsAsIfFormattedOnItsOwn) {
    TempDir tmp;
    Signals s;
    for (const char* name : {"p.coherence", "p.entropy", "p.sustainability", "e.total", "e.pass", "e.p.total"})
        s.declare(name, 0, 0);
    const double nan = std::nan("");
    const std::vector<std::vector<double>> rows = {
        {0.1, 0.2, 0.1, 2.5, 1, 2.5},                  // twins in two places
        {0.30000000000000004, 0.2, 0.30000000000000004, 2.5, 1, 2.5},
        {0.3, 0.2, 0.30000000000000004, 1e-300, 1, 1e-300}, // apart, then a new pair
        {0.0, -0.0, 0.0, -0.0, 0, 0.0},               // equal as numbers, not as bits
        {nan, 1.0 / 3, nan, 2.0 / 3, 0, 1.0 / 3},      // a twin that is not the nearest earlier column
        {0.1, 0.2, 0.1, 2.5, 1, 2.5},
    };
    std::string expected = "tick,p.coherence,p.entropy,p.sustainability,e.total,e.pass,e.p.total\n";
    {
        CsvWriter w(tmp / "telemetry.csv", s, false);
        for (size_t t = 0; t < rows.size(); ++t) {
            w.write_row(t + 1, rows[t].data());
            expected += std::to_string(t + 1);
            for (double v : rows[t]) {
                char text[32];
                expected += ',' + std::string(text, std::to_chars(text, text + sizeof text, v).ptr);
            }
            expected += '\n';
        }
    }
    EXPECT_EQ(read_file(tmp / "telemetry.csv"), expected);
    EXPECT_NE(expected.find("\n4,0,-0,0,-0,0,0\n"), std::string::npos) << expected;
}

} // namespace records_rotation_test
