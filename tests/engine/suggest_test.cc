#include "sluice/suggest.h"

#include <doctest/doctest.h>

namespace sluice {
namespace {

TEST_CASE("Suggest.EditDistance.CountsTranspositionAsOne") {
  CHECK(EditDistance("", "") == 0);
  CHECK(EditDistance("abc", "abc") == 0);
  CHECK(EditDistance("prepare", "prepar") == 1);
  CHECK(EditDistance("schedule", "shedule") == 1);
  CHECK(EditDistance("depends_on", "depneds_on") == 1);  // transposition
  CHECK(EditDistance("kitten", "sitting") == 3);
  CHECK(EditDistance("", "abc") == 3);
}

TEST_CASE("Suggest.ClosestMatch.OnlyPlausibleTypos") {
  const std::vector<std::string> ids = {"prepare", "train", "evaluate", "deploy"};
  CHECK(ClosestMatch("prepar", ids) == std::optional<std::string>("prepare"));
  CHECK(ClosestMatch("evalute", ids) == std::optional<std::string>("evaluate"));
  CHECK(ClosestMatch("TRAIN", ids) == std::optional<std::string>("train"));
  CHECK_FALSE(ClosestMatch("zzz", ids).has_value());
  CHECK_FALSE(ClosestMatch("monitor", ids).has_value());
  // One letter is one edit from any other one letter: no suggestion.
  CHECK_FALSE(ClosestMatch("c", {"a", "b"}).has_value());
  // The exact name is not a suggestion for itself.
  CHECK_FALSE(ClosestMatch("train", {"train"}).has_value());
  CHECK(DidYouMean("trian", ids) == "did you mean \"train\"?");
  CHECK(DidYouMean("zzz", ids).empty());
}

}  // namespace
}  // namespace sluice
