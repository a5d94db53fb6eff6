// Checks a validated DAG against the plugins that will run it: each task's step exists, its
// params are ones the step declares, of the declared types, with every required one set, and
// its inputs match the step's declared inputs. Problems carry the DAG file's line and column.
#ifndef SLUICE_PLUGIN_CHECK_H_
#define SLUICE_PLUGIN_CHECK_H_

#include "sluice/dag.h"
#include "sluice/diagnostics.h"
#include "sluice/plugin_host.h"

namespace sluice {

// A step no installed plugin provides is an error everywhere (validate, run, the daemon):
// the DAG cannot run here. `sluice dag validate --no-plugins` checks a DAG meant for
// another machine's plugins without this.
void CheckDagAgainstPlugins(const Dag& dag, const PluginCatalog& catalog, Diagnostics* diagnostics);

}  // namespace sluice

#endif  // SLUICE_PLUGIN_CHECK_H_
