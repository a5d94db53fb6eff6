// "Did you mean …?" — finds the candidate closest to a misspelt name.
#ifndef SLUICE_SUGGEST_H_
#define SLUICE_SUGGEST_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// Optimal-string-alignment edit distance (insertions, deletions, substitutions and
// transpositions of adjacent characters each cost 1). Case-sensitive.
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate nearest to `name`, if it is near enough to be a plausible typo: distance at
// most max(1, len/3) (0 below 3 characters), or the same ignoring case. Ties go to the earlier
// candidate.
std::optional<std::string> ClosestMatch(std::string_view name,
                                        const std::vector<std::string>& candidates);

// `did you mean "x"?` or empty.
std::string DidYouMean(std::string_view name, const std::vector<std::string>& candidates);

}  // namespace sluice

#endif  // SLUICE_SUGGEST_H_
