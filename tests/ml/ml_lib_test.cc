// plugins/ml, the library the ML plugins share: statistics against textbook values,
// CSV edge cases, preprocessing, and the split's random generator.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <numeric>

#include "ml/csv.h"
#include "ml/drift.h"
#include "ml/metrics.h"
#include "ml/preprocess.h"
#include "ml/profile.h"
#include "test_util.h"

namespace sluice::ml {
namespace {

using nlohmann::json;

TEST_CASE("MlLib.Metrics.RocAucCountsTiesHalf") {
  // scikit-learn's roc_auc_score documentation example: 0.75.
  CHECK(RocAuc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}) == doctest::Approx(0.75));
  CHECK(RocAuc({0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1}) == doctest::Approx(0.5));
  CHECK(std::isnan(RocAuc({0.1, 0.2}, {1, 1})));
}

TEST_CASE("MlLib.Metrics.ClassificationReport") {
  // Three classes, six rows; row r's probabilities put the mass on `predicted[r]`.
  const std::vector<double> labels = {0, 0, 1, 1, 2, 2};
  const std::vector<int> predicted = {0, 1, 1, 1, 2, 0};
  std::vector<double> proba;
  for (int p : predicted) {
    for (int k = 0; k < 3; ++k) proba.push_back(k == p ? 0.8 : 0.1);
  }
  const json r = ClassificationReport(proba, labels, {"a", "b", "c"}, 2, 10);
  CHECK(r["accuracy"].get<double>() == doctest::Approx(4.0 / 6));
  CHECK(r["confusion_matrix"]["rows"] == json::parse("[[1,1,0],[0,2,0],[1,0,1]]"));
  // a: p 1/2 r 1/2; b: p 2/3 r 1; c: p 1 r 1/2.
  CHECK(r["per_class"]["b"]["precision"].get<double>() == doctest::Approx(2.0 / 3));
  CHECK(r["precision_macro"].get<double>() == doctest::Approx((0.5 + 2.0 / 3 + 1) / 3));
  CHECK(r["recall_macro"].get<double>() == doctest::Approx((0.5 + 1 + 0.5) / 3));
  CHECK(r["logloss"].get<double>() ==
        doctest::Approx(-(4 * std::log(0.8) + 2 * std::log(0.1)) / 6));
  size_t calibrated = 0;
  for (const json& bin : r["calibration"]) calibrated += bin["count"].get<size_t>();
  CHECK(calibrated == 6);
}

TEST_CASE("MlLib.Drift.ChiSquaredAndKolmogorovSmirnovAgainstTables") {
  // Critical values of the chi-squared distribution at p = 0.05.
  CHECK(GammaQ(0.5, 3.841 / 2) == doctest::Approx(0.05).epsilon(1e-3));
  CHECK(GammaQ(1.0, 5.991 / 2) == doctest::Approx(0.05).epsilon(1e-3));
  CHECK(GammaQ(5.0, 18.307 / 2) == doctest::Approx(0.05).epsilon(1e-3));
  CHECK(GammaQ(2.0, 0) == 1.0);

  std::vector<double> x(100);
  std::iota(x.begin(), x.end(), 1.0);
  std::vector<double> shifted(100);
  std::iota(shifted.begin(), shifted.end(), 51.0);
  const KsResult same = KolmogorovSmirnov(x, x);
  CHECK(same.statistic == 0);
  CHECK(same.p_value == doctest::Approx(1.0));
  const KsResult moved = KolmogorovSmirnov(x, shifted);
  CHECK(moved.statistic == doctest::Approx(0.5));
  CHECK(moved.p_value < 1e-9);

  const std::vector<double> edges = {10, 20, 30, 40, 50, 60, 70, 80, 90};
  CHECK(Psi(x, x, edges) == doctest::Approx(0.0));
  CHECK(Psi(x, shifted, edges) > 0.25);

  const ChiSquaredResult fair = ChiSquared({{"a", 50}, {"b", 50}}, {{"a", 50}, {"b", 50}});
  CHECK(fair.statistic == doctest::Approx(0.0));
  CHECK(fair.p_value == doctest::Approx(1.0));
  // 60/40 against 50/50 with n = 100: chi2 = 4, dof 1, p = 0.0455.
  const ChiSquaredResult skewed = ChiSquared({{"a", 5}, {"b", 5}}, {{"a", 60}, {"b", 40}});
  CHECK(skewed.statistic == doctest::Approx(4.0));
  CHECK(skewed.p_value == doctest::Approx(0.0455).epsilon(1e-2));
}

TEST_CASE("MlLib.Csv.QuotesCrlfAndErrorsWithLines") {
  testing::TempDir dir;
  testing::WriteFile(dir.file("a.csv"),
                     "x,\"y, with comma\"\r\n1,\"say \"\"hi\"\"\"\r\n\r\n2,\"two\nlines\"\r\n");
  CsvTable t = ReadCsv(dir.file("a.csv"));
  REQUIRE(t.rows.size() == 2);
  CHECK(t.header[1] == "y, with comma");
  CHECK(t.rows[0][1] == "say \"hi\"");
  CHECK(t.rows[1][1] == "two\nlines");
  CHECK(t.lines == std::vector<size_t>{2, 4});
  WriteCsv(dir.file("b.csv"), t);
  CHECK(ReadCsv(dir.file("b.csv")).rows == t.rows);

  testing::WriteFile(dir.file("bad.csv"), "x,y\n1,2\n3\n");
  CHECK_THROWS_WITH(ReadCsv(dir.file("bad.csv")),
                    doctest::Contains("bad.csv:3: 1 cells, but the header has 2 columns"));
  testing::WriteFile(dir.file("open.csv"), "x\n\"never closed\n");
  CHECK_THROWS_WITH(ReadCsv(dir.file("open.csv")), doctest::Contains("open.csv:2: a quoted field"));
  testing::WriteFile(dir.file("other.csv"), "y,x\n1,2\n");
  CHECK_THROWS_WITH(ReadCsvFiles({dir.file("b.csv"), dir.file("other.csv")}),
                    doctest::Contains("its header differs"));
  const CsvTable both = ReadCsvFiles({dir.file("b.csv"), dir.file("b.csv")});
  CHECK(both.rows.size() == 4);
  CHECK(both.Where(3) == "b.csv:" + std::to_string(both.lines[3]));
}

TEST_CASE("MlLib.Preprocess.FitTransformAndBadRows") {
  CsvTable t;
  t.header = {"size", "color", "label"};
  t.rows = {{"1", "red", "y"}, {"3", "blue", "n"}, {"", "red", "y"}, {"5", "", "n"}};
  t.lines = {2, 3, 4, 5};
  const Preprocessor p = Preprocessor::Fit(t, {0, 1, 2, 3}, {"size", "color"}, {"color"}, "label",
                                           TaskKind::kBinary, {"n", "y"}, "standard");
  CHECK(p.FeatureNames() == std::vector<std::string>{"size", "color=blue", "color=red"});
  // size: values 1, 3, 5 -> median 3, mean 3, population sd sqrt(8/3).
  const std::vector<double> x = p.TransformTable(t);
  const double sd = std::sqrt(8.0 / 3);
  CHECK(x[0] == doctest::Approx(-2 / sd));
  CHECK(x[6] == doctest::Approx(0.0));  // the missing size is the median
  CHECK(x[10] == 0.0);                  // the missing color is the mode, red
  CHECK(x[11] == 1.0);
  CHECK(p.Labels(t) == std::vector<double>{1, 0, 1, 0});

  const Preprocessor back = Preprocessor::FromJson(p.ToJson());
  CHECK(back.TransformTable(t) == x);
  std::vector<double> out;
  CHECK(p.TransformJson({{"size", "big"}, {"color", "red"}}, &out) ==
        "column \"size\" must be a number, not \"big\"");
  CHECK(p.TransformJson({{"color", "red"}}, &out) == "column \"size\" is missing");
  CHECK(p.TransformJson({{"size", 1}, {"color", "red"}, {"weight", 2}}, &out) ==
        "unknown column \"weight\"");
  out.clear();
  CHECK(p.TransformJson({{"size", 1}, {"color", "green"}, {"label", "y"}}, &out).empty());
  CHECK(out[1] == 0.0);  // an unseen level is all zeros
  CHECK(out[2] == 0.0);
}

TEST_CASE("MlLib.Random.SameSeedSameSplitEverywhere") {
  std::vector<int> v(10);
  std::iota(v.begin(), v.end(), 0);
  Random(42).Shuffle(v);
  // Pinned: SplitMix64 and our unbiased shuffle, not the standard library's (whose
  // distributions differ between implementations). A change here changes every split. The
  // expected order was computed by a separate Python implementation of the same algorithm.
  CHECK(v == std::vector<int>{0, 9, 5, 8, 6, 4, 7, 2, 1, 3});
}

}  // namespace
}  // namespace sluice::ml
