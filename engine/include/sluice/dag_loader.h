// Loading and validating DAG files (the format is specified in docs/dag-format.md).
//
// Loading is all-or-nothing: the result holds a Dag only when the file has no error, and
// then it is fully validated (see dag.h for what that guarantees). Otherwise it holds every
// problem found, each with file, line, column and, where possible, a hint — the loader keeps
// going after the first error so that one run shows everything to fix.
//
// This is the only place that includes toml++.
// Thread safety: the functions are reentrant; results are plain values.
#ifndef SLUICE_DAG_LOADER_H_
#define SLUICE_DAG_LOADER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/dag.h"
#include "sluice/diagnostics.h"

namespace sluice {

struct DagLoadResult {
  std::string path;                // as given by the caller; used in diagnostics
  std::string source;              // the file's text (for quoting lines in diagnostics)
  std::unique_ptr<const Dag> dag;  // set iff diagnostics has no errors
  Diagnostics diagnostics;         // errors and warnings, in file order

  bool ok() const { return dag != nullptr; }
};

// A DAG file larger than this is refused before it is parsed (10,000 tasks fit in ~3 MiB).
// Nesting inside it is bounded too: toml++ stops at 256 levels, and params at kMaxJsonDepth.
inline constexpr size_t kMaxDagFileBytes = 16u << 20;

// Reads and validates one DAG file.
DagLoadResult LoadDagFile(const std::string& path);

// Validates DAG text; `path` is only used to name the file in diagnostics.
DagLoadResult LoadDagText(std::string_view text, const std::string& path);

// Loads every *.toml file under `dir` (recursively, in path order) and also reports DAG ids
// used by more than one file (the later file gets the error and no Dag).
// A directory that cannot be read yields one result whose diagnostics say so.
std::vector<DagLoadResult> LoadDagDirectory(const std::string& dir);

// Reports DAG ids that more than one result holds: each later holder gets an error and
// loses its Dag, so that a set of files never serves two DAGs under one id.
void RejectDuplicateDagIds(std::vector<DagLoadResult>* results);

}  // namespace sluice

#endif  // SLUICE_DAG_LOADER_H_
