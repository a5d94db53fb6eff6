// Aborts while being loaded: the scan must survive it (in the worker) and list it.
#include <cstdlib>

#include "raw_table.h"
namespace {
struct CrashOnLoad {
  CrashOnLoad() { std::abort(); }
} crash;
}  // namespace
RAW_TEST_PLUGIN(1, 0, "crashy", R"({"name":"crashy","steps":[{"name":"crashy.step"}]})")
