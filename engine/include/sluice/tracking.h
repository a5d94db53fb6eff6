// Experiment tracking: the params, metrics, tags and notes of runs, read back for people and
// compared side by side. The data is what the runner records with every try (state_store.h);
// this module shapes it, so that the CLI and the API answer the same thing.
//
// Thread safety: pure functions over a StateStore (reads only).
#ifndef SLUICE_TRACKING_H_
#define SLUICE_TRACKING_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sluice/state_store.h"
#include "sluice/status.h"

namespace sluice {

// One run's tracked data. Per task, its latest try that ran:
//   {"dag_id", "run_id", "state", "run_type", "created_at", "params", "tags", "note",
//    "tasks": {"train": {"try_number", "state", "params", "tags", "plugin_version",
//                        "cached_from", "metrics": [{"name", "value", "step"?}, ...],
//                        "summary": {"auc": {"last", "min", "max", "count", "last_step"?}}}}}
// `task`: only that task (NotFound when the run has no such task); empty: every task.
StatusOr<nlohmann::json> RunTracking(const StateStore& store, const RunRecord& run,
                                     const std::string& task);

// Rows that compare runs (each the output of RunTracking):
//   {"runs": [{"dag_id", "run_id", "state", "created_at"}],
//    "rows": [{"section": "run"|"param"|"tag"|"metric", "key": "train.eta",
//              "values": [v_run1, v_run2, ...] (null where a run has none),
//              "differs": bool}]}
// Sections: run (state, note), param (run params as "params.x", task params as "task.x"),
// tag (run tags, task tags as "task.x"), metric (each task's last value as "task.metric").
nlohmann::json CompareRuns(const std::vector<nlohmann::json>& runs);

}  // namespace sluice

#endif  // SLUICE_TRACKING_H_
