// Table-driven: every file in tests/data/dags/invalid/ is a DAG with mistakes, and its
// trailing comments say what the loader must report:
//
//   # expect: LINE:COL: text the error message contains
//   # hint: text the hint of that error contains
//
// The loader must report exactly the expected errors (no more, no fewer), each at its
// line and column, and must not produce a Dag.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "sluice/dag_loader.h"
#include "test_util.h"

namespace sluice {
namespace {

struct Expectation {
  uint32_t line = 0;
  uint32_t column = 0;
  std::string message;
  std::string hint;
};

std::vector<Expectation> ParseExpectations(const std::string& text) {
  std::vector<Expectation> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# expect: ", 0) == 0) {
      Expectation e;
      std::string rest = line.substr(10);
      size_t colon1 = rest.find(':');
      size_t colon2 = rest.find(':', colon1 + 1);
      e.line = static_cast<uint32_t>(std::stoul(rest.substr(0, colon1)));
      e.column = static_cast<uint32_t>(std::stoul(rest.substr(colon1 + 1, colon2 - colon1 - 1)));
      e.message = rest.substr(colon2 + 2);
      out.push_back(e);
    } else if (line.rfind("# hint: ", 0) == 0 && !out.empty()) {
      out.back().hint = line.substr(8);
    }
  }
  return out;
}

TEST_CASE("DagLoader.InvalidFixtures.EachReportsItsErrorsAtTheirPositions") {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(testing::DataPath("dags/invalid"))) {
    if (entry.path().extension() == ".toml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  // The issue asks for at least 40 invalid-file scenarios; keep the table from shrinking.
  CHECK(files.size() >= 40);

  for (const fs::path& file : files) {
    CAPTURE(file.filename().string());
    const std::string text = testing::ReadFile(file.string());
    const std::vector<Expectation> expected = ParseExpectations(text);
    REQUIRE_MESSAGE(!expected.empty(), "fixture has no '# expect:' line");

    DagLoadResult result = LoadDagText(text, file.filename().string());
    CHECK_FALSE(result.ok());
    CHECK(result.dag == nullptr);

    std::vector<const Diagnostic*> errors;
    for (const Diagnostic& d : result.diagnostics.items()) {
      if (d.severity == Severity::kError) errors.push_back(&d);
    }
    std::string reported;
    for (const Diagnostic* d : errors) {
      reported += std::to_string(d->pos.line) + ":" + std::to_string(d->pos.column) + ": " +
                  d->message + " [hint: " + d->hint + "]\n";
    }
    CAPTURE(reported);
    CHECK(errors.size() == expected.size());
    for (const Expectation& e : expected) {
      CAPTURE(e.message);
      auto match = std::find_if(errors.begin(), errors.end(), [&](const Diagnostic* d) {
        return d->pos.line == e.line && d->pos.column == e.column &&
               d->message.find(e.message) != std::string::npos;
      });
      if (match == errors.end()) {
        FAIL_CHECK("expected error not reported at ", e.line, ":", e.column);
        continue;
      }
      CHECK((*match)->file == file.filename().string());
      if (!e.hint.empty()) CHECK((*match)->hint.find(e.hint) != std::string::npos);
    }
  }
}

}  // namespace
}  // namespace sluice
