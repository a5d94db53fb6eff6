#include "sluice/diagnostics.h"

#include <doctest/doctest.h>

namespace sluice {
namespace {

TEST_CASE("Diagnostics.Render.QuotesTheLineWithACaretAndHint") {
  const std::string source = "[dag]\nid = \"t\"\ndepends_on = [\"prepar\"]\n";
  Diagnostic d{Severity::kError,
               "dags/x.toml",
               {3, 15},
               "unknown task \"prepar\"",
               "did you mean \"prepare\"?"};
  RenderOptions options;
  options.source = source;
  CHECK(Render(d, options) ==
        "dags/x.toml:3:15: error: unknown task \"prepar\"\n"
        "   3 | depends_on = [\"prepar\"]\n"
        "     |               ^\n"
        "  hint: did you mean \"prepare\"?\n");
}

TEST_CASE("Diagnostics.Render.WithoutPositionOrSource") {
  Diagnostic d{Severity::kWarning, "dags/x.toml", {}, "something odd", ""};
  CHECK(Render(d) == "dags/x.toml: warning: something odd\n");
  RenderOptions colored;
  colored.color = true;
  CHECK(Render(d, colored).find("\033[") != std::string::npos);
}

TEST_CASE("Diagnostics.SourceLine.HandlesEdges") {
  CHECK(SourceLine("a\nb\r\nc", 2) == "b");
  CHECK(SourceLine("a\nb\nc", 3) == "c");
  CHECK(SourceLine("a\nb", 5).empty());
  CHECK(SourceLine("a", 0).empty());
}

TEST_CASE("Diagnostics.Sort.ByFileThenPosition") {
  Diagnostics list;
  list.Error("b.toml", {1, 1}, "b1");
  list.Error("a.toml", {5, 2}, "a5");
  list.Warning("a.toml", {2, 9}, "a2");
  list.Sort();
  REQUIRE(list.items().size() == 3);
  CHECK(list.items()[0].message == "a2");
  CHECK(list.items()[1].message == "a5");
  CHECK(list.items()[2].message == "b1");
  CHECK(list.error_count() == 2);
}

}  // namespace
}  // namespace sluice
