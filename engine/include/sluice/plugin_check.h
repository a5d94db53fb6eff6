// Checks a validated DAG against the plugins that will run it: each task's step exists, its
// params are ones the step declares, of the declared types, with every required one set, and
// its inputs match the step's declared inputs. Problems carry the DAG file's line and column.
#ifndef SLUICE_PLUGIN_CHECK_H_
#define SLUICE_PLUGIN_CHECK_H_

#include "sluice/dag.h"
#include "sluice/diagnostics.h"
#include "sluice/plugin_host.h"

namespace sluice {

// `missing_step_is_error`: false for `sluice dag validate` (the plugin may be installed where
// the DAG runs: a warning), true for `sluice run` (it cannot run: an error).
void CheckDagAgainstPlugins(const Dag& dag, const PluginCatalog& catalog,
                            bool missing_step_is_error, Diagnostics* diagnostics);

}  // namespace sluice

#endif  // SLUICE_PLUGIN_CHECK_H_
