// MLOps commands over the state dir: artifacts (list, show, lineage), gc, runs delete, run
// metrics and run comparison. Reads open the store read-only, so they work while a daemon or
// `sluice run` owns it; gc and runs delete need the state dir to themselves.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <map>

#include "commands.h"
#include "common.h"
#include "sluice/artifacts.h"
#include "sluice/duration.h"
#include "sluice/executor.h"
#include "sluice/state_store.h"
#include "sluice/tracking.h"

namespace sluice::cli {
namespace {

using nlohmann::json;

struct MlopsOptions {
  std::string state_dir;
  std::string dag;
  std::string run_id;
  std::string task;
  std::string artifact;
  std::vector<std::string> runs;
  size_t limit = 50;
  int depth = 0;
  bool json = false;
  bool csv = false;
  bool steps = false;
  bool up = false;
  bool down = false;
  bool dry_run = false;
  bool only_diff = false;
};

int Fail(const char* command, const Status& s) { return FailCommand(command, s); }

std::string Short(const std::string& id) { return id.substr(0, 12); }

std::string FormatValue(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
    return buf;
  }
  return v.dump();
}

std::string Describe(const ArtifactRecord& a) {
  std::string text = Short(a.id) + "  " + a.kind + "  " + FormatSize(a.size);
  if (a.kind == "dir") text += "  " + std::to_string(a.files) + (a.files == 1 ? " file" : " files");
  if (a.kind == "value") {
    std::string v = a.value.dump();
    if (v.size() > 40) v = v.substr(0, 37) + "...";
    text += "  " + v;
  }
  return text;
}

std::string MadeBy(const ArtifactRecord& a) {
  return a.dag_id + "/" + a.run_id + "/" + a.task_id + "#" + std::to_string(a.try_number);
}

StatusOr<RunRecord> FindRun(const StateStore& store, const std::string& dag,
                            const std::string& run_id) {
  return dag.empty() ? store.FindRun(run_id) : store.GetRun(dag, run_id);
}

// ---------------------------------------------------------------------------------------------
// artifacts

int ArtifactsList(const MlopsOptions& o) {
  auto store = OpenStateStoreReadOnly(o.state_dir);
  if (!store.ok()) return Fail("artifacts list", store.status());
  std::vector<ArtifactRecord> found;
  Status read = (*store)->Scan(Space::kArtifacts, "", [&](const std::string&, const json& value) {
    StatusOr<ArtifactRecord> a = ArtifactRecord::FromJson(value);
    if (!a.ok()) return true;
    if (!o.dag.empty() && a->dag_id != o.dag) return true;
    if (!o.run_id.empty() && a->run_id != o.run_id) return true;
    found.push_back(*std::move(a));
    return true;
  });
  if (!read.ok()) return Fail("artifacts list", read);
  std::sort(found.begin(), found.end(), [](const ArtifactRecord& a, const ArtifactRecord& b) {
    return a.created_at > b.created_at;
  });
  if (found.size() > o.limit) found.resize(o.limit);
  if (o.json) {
    json out = json::array();
    for (const ArtifactRecord& a : found) out.push_back(a.ToJson());
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  if (found.empty()) {
    std::printf("no artifacts in %s\n", o.state_dir.c_str());
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "KIND", "SIZE", "OUTPUT", "MADE BY (dag/run/task#try)", "CREATED"}};
  for (const ArtifactRecord& a : found) {
    rows.push_back({Short(a.id), a.kind, FormatSize(a.size), a.output, MadeBy(a), a.created_at});
  }
  PrintTable(rows);
  return kExitOk;
}

int ArtifactsShow(const MlopsOptions& o) {
  auto store = OpenStateStoreReadOnly(o.state_dir);
  if (!store.ok()) return Fail("artifacts show", store.status());
  StatusOr<ArtifactRecord> a = FindArtifact(**store, o.artifact);
  if (!a.ok()) return Fail("artifacts show", a.status());
  const ArtifactStore objects(ArtifactStore::RootFor(o.state_dir));
  StatusOr<std::vector<LineageEdge>> produced = Producers(**store, a->id);
  if (!produced.ok()) return Fail("artifacts show", produced.status());
  StatusOr<std::vector<LineageEdge>> consumed = Consumers(**store, a->id);
  if (!consumed.ok()) return Fail("artifacts show", consumed.status());
  const std::vector<LineageEdge>& producers = *produced;
  const std::vector<LineageEdge>& consumers = *consumed;
  auto edge_json = [](const LineageEdge& e) {
    return json{{"dag_id", e.dag_id},
                {"run_id", e.run_id},
                {"task_id", e.task_id},
                {"try_number", e.try_number},
                {"name", e.name}};
  };
  if (o.json) {
    json out = a->ToJson();
    if (a->kind != "value") {
      out["path"] = std::filesystem::absolute(objects.PathOf(a->id, a->kind)).string();
      out["present"] = objects.Exists(a->id);
    }
    out["produced_by"] = json::array();
    for (const LineageEdge& e : producers) out["produced_by"].push_back(edge_json(e));
    out["read_by"] = json::array();
    for (const LineageEdge& e : consumers) out["read_by"].push_back(edge_json(e));
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  std::printf("artifact %s\n", a->id.c_str());
  std::printf("  kind:     %s\n", a->kind.c_str());
  std::printf("  size:     %s%s\n", FormatSize(a->size).c_str(),
              a->kind == "dir" ? (" in " + std::to_string(a->files) + " files").c_str() : "");
  if (a->kind == "value") {
    std::printf("  value:    %s\n", a->value.dump().c_str());
  } else {
    std::printf("  path:     %s%s\n",
                std::filesystem::absolute(objects.PathOf(a->id, a->kind)).string().c_str(),
                objects.Exists(a->id) ? "" : "  (missing: removed outside Sluice)");
  }
  std::printf("  created:  %s\n", a->created_at.c_str());
  std::printf("  made by:\n");
  for (const LineageEdge& e : producers) {
    std::printf("    %s/%s/%s#%d  as output \"%s\"\n", e.dag_id.c_str(), e.run_id.c_str(),
                e.task_id.c_str(), e.try_number, e.name.c_str());
  }
  std::printf("  read by:%s\n", consumers.empty() ? " nothing yet" : "");
  for (const LineageEdge& e : consumers) {
    std::printf("    %s/%s/%s#%d  as input \"%s\"\n", e.dag_id.c_str(), e.run_id.c_str(),
                e.task_id.c_str(), e.try_number, e.name.c_str());
  }
  std::printf("  lineage: sluice artifacts lineage %s\n", Short(a->id).c_str());
  return kExitOk;
}

// Prints a LineageTree node as an indented tree.
void PrintNode(const json& node, bool up, const std::string& indent, const std::string& as) {
  StatusOr<ArtifactRecord> a = ArtifactRecord::FromJson(node["artifact"]);
  std::string line = as.empty() ? "" : as + ": ";
  line += a.ok() ? Describe(*a) : Short(node["artifact"].value("id", "?")) + "  (no record)";
  if (node.value("seen", false)) line += "  (shown above)";
  std::printf("%s\n", line.c_str());
  const json& tries = node["tries"];
  if (!tries.is_array()) return;
  for (size_t i = 0; i < tries.size(); ++i) {
    const json& t = tries[i];
    const bool last_try = i + 1 == tries.size();
    std::printf("%s%s%s %s/%s/%s#%d", indent.c_str(), last_try ? "└─ " : "├─ ",
                up ? "made by" : "read by", t.value("dag_id", "").c_str(),
                t.value("run_id", "").c_str(), t.value("task_id", "").c_str(),
                t.value("try_number", 0));
    std::string detail = t.value("state", "");
    if (!t.value("plugin_version", "").empty())
      detail = t["plugin_version"].get<std::string>() + ", " + detail;
    std::printf("  [%s]  %s \"%s\"\n", detail.c_str(), up ? "output" : "input",
                t.value("name", "").c_str());
    const std::string child_indent = indent + (last_try ? "   " : "│  ");
    const json& children = t["artifacts"];
    for (size_t k = 0; k < children.size(); ++k) {
      const bool last = k + 1 == children.size();
      std::printf("%s%s", child_indent.c_str(), last ? "└─ " : "├─ ");
      PrintNode(children[k], up, child_indent + (last ? "   " : "│  "),
                children[k].value("as", ""));
    }
    if (children.empty() && up && t.value("state", "") != "deleted") {
      std::printf("%s└─ (read no artifacts)\n", child_indent.c_str());
    }
  }
}

int ArtifactsLineage(const MlopsOptions& o) {
  auto store = OpenStateStoreReadOnly(o.state_dir);
  if (!store.ok()) return Fail("artifacts lineage", store.status());
  StatusOr<ArtifactRecord> a = FindArtifact(**store, o.artifact);
  if (!a.ok()) return Fail("artifacts lineage", a.status());
  const bool up = o.up || !o.down;
  const bool down = o.down || !o.up;
  json out = json::object();
  if (up) out["up"] = LineageTree(**store, a->id, /*up=*/true, o.depth);
  if (down) out["down"] = LineageTree(**store, a->id, /*up=*/false, o.depth);
  if (o.json) {
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  if (up) {
    std::printf("up (what made it, from what):\n");
    PrintNode(out["up"], true, "", "");
  }
  if (down) {
    std::printf("%sdown (what was made from it):\n", up ? "\n" : "");
    PrintNode(out["down"], false, "", "");
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// gc, runs delete

int Gc(const MlopsOptions& o) {
  auto store = OpenStateStore(o.state_dir);
  if (!store.ok()) return Fail("gc", store.status());
  const ArtifactStore objects(ArtifactStore::RootFor(o.state_dir));
  StatusOr<GcReport> report = CollectGarbage(store->get(), objects, o.dry_run);
  if (!report.ok()) return Fail("gc", report.status());
  // With the state dir locked no try is running: what is left in work/ (a try's private
  // dirs) and in the store's tmp/ (a half-stored object) belongs to tries that crashed.
  size_t stale = 0;
  for (const std::filesystem::path& dir :
       {std::filesystem::path(o.state_dir) / "work", objects.root() / "tmp"}) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      ++stale;
      if (!o.dry_run) RemoveTree(entry.path()).IgnoreError();  // reported by the next gc
    }
  }
  if (o.json) {
    std::printf("%s\n", json{{"dry_run", o.dry_run},
                             {"removed", report->removed},
                             {"bytes", report->bytes},
                             {"kept", report->kept},
                             {"orphan_objects", report->orphan_objects},
                             {"stale_work_dirs", stale}}
                            .dump(2)
                            .c_str());
    return kExitOk;
  }
  for (const std::string& id : report->removed) {
    std::printf("%s %s\n", o.dry_run ? "would remove" : "removed", Short(id).c_str());
  }
  std::printf(
      "%s %zu artifact%s, %zu orphan object%s and %zu stale work dir%s, %s; kept %zu "
      "artifact%s\n",
      o.dry_run ? "would remove" : "removed", report->removed.size(),
      report->removed.size() == 1 ? "" : "s", report->orphan_objects,
      report->orphan_objects == 1 ? "" : "s", stale, stale == 1 ? "" : "s",
      FormatSize(report->bytes).c_str(), report->kept, report->kept == 1 ? "" : "s");
  return kExitOk;
}

int RunsDelete(const MlopsOptions& o) {
  auto store = OpenStateStore(o.state_dir);
  if (!store.ok()) return Fail("runs delete", store.status());
  StatusOr<RunRecord> run = FindRun(**store, o.dag, o.run_id);
  if (!run.ok()) return Fail("runs delete", run.status());
  Status deleted = (*store)->DeleteRun(run->dag_id, run->run_id);
  if (!deleted.ok()) return Fail("runs delete", deleted);
  StateStore::Batch batch;
  Event e;
  e.time = FormatTimestamp(std::chrono::system_clock::now());
  e.dag_id = run->dag_id;
  e.run_id = run->run_id;
  e.kind = "note";
  e.reason = "run deleted";
  e.actor = CliActor("sluice runs delete");
  batch.AddEvent(std::move(e));
  (*store)->Commit(&batch).IgnoreError();  // the run is gone either way
  std::error_code ec;
  std::filesystem::remove_all(
      std::filesystem::path(o.state_dir) / "logs" / run->dag_id / run->run_id, ec);
  std::printf("deleted run %s of DAG %s; `sluice gc` frees the artifacts only it used\n",
              run->run_id.c_str(), run->dag_id.c_str());
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// metrics, runs compare

int Metrics(const MlopsOptions& o) {
  auto store = OpenStateStoreReadOnly(o.state_dir);
  if (!store.ok()) return Fail("metrics", store.status());
  StatusOr<RunRecord> run = FindRun(**store, o.dag, o.run_id);
  if (!run.ok()) return Fail("metrics", run.status());
  StatusOr<json> tracked = RunTracking(**store, *run, o.task);
  if (!tracked.ok()) return Fail("metrics", tracked.status());
  if (o.json) {
    std::printf("%s\n", tracked->dump(2).c_str());
    return kExitOk;
  }
  const json& tasks = (*tracked)["tasks"];
  if (o.csv) {
    std::printf("dag_id,run_id,task_id,try_number,metric,step,value\n");
    for (const auto& [task, t] : tasks.items()) {
      for (const json& p : t["metrics"]) {
        std::printf("%s,%s,%s,%d,%s,%s,%.17g\n", run->dag_id.c_str(), run->run_id.c_str(),
                    task.c_str(), t.value("try_number", 0), p.value("name", "").c_str(),
                    p.contains("step") ? std::to_string(p["step"].get<int64_t>()).c_str() : "",
                    p.value("value", 0.0));
      }
    }
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  if (o.steps) {
    rows.push_back({"TASK", "METRIC", "STEP", "VALUE"});
    for (const auto& [task, t] : tasks.items()) {
      for (const json& p : t["metrics"]) {
        rows.push_back({task, p.value("name", ""),
                        p.contains("step") ? std::to_string(p["step"].get<int64_t>()) : "-",
                        FormatValue(p["value"])});
      }
    }
  } else {
    rows.push_back({"TASK", "METRIC", "LAST", "MIN", "MAX", "POINTS"});
    for (const auto& [task, t] : tasks.items()) {
      for (const auto& [name, s] : t["summary"].items()) {
        rows.push_back({task, name, FormatValue(s["last"]), FormatValue(s["min"]),
                        FormatValue(s["max"]), std::to_string(s["count"].get<int64_t>())});
      }
    }
  }
  if (rows.size() == 1) {
    std::printf("run %s recorded no metrics%s\n", run->run_id.c_str(),
                o.task.empty() ? "" : (" in task " + o.task).c_str());
    return kExitOk;
  }
  PrintTable(rows);
  return kExitOk;
}

int Compare(const MlopsOptions& o) {
  if (o.runs.size() < 2) {
    return Fail("runs compare", Status::InvalidArgument("give at least two run ids to compare"));
  }
  auto store = OpenStateStoreReadOnly(o.state_dir);
  if (!store.ok()) return Fail("runs compare", store.status());
  std::vector<json> tracked;
  for (const std::string& id : o.runs) {
    StatusOr<RunRecord> run = FindRun(**store, o.dag, id);
    if (!run.ok()) return Fail("runs compare", run.status());
    StatusOr<json> t = RunTracking(**store, *run, "");
    if (!t.ok()) return Fail("runs compare", t.status());
    tracked.push_back(*std::move(t));
  }
  json table = CompareRuns(tracked);
  if (o.json) {
    std::printf("%s\n", table.dump(2).c_str());
    return kExitOk;
  }
  std::vector<std::string> header = {"", "SECTION", "KEY"};
  for (const json& r : table["runs"]) header.push_back(r.value("run_id", ""));
  std::vector<std::vector<std::string>> rows = {header};
  size_t differing = 0;
  for (const json& row : table["rows"]) {
    const bool differs = row.value("differs", false);
    differing += differs ? 1 : 0;
    if (o.only_diff && !differs) continue;
    std::vector<std::string> line = {differs ? "*" : "", row.value("section", ""),
                                     row.value("key", "")};
    const json& values = row["values"];
    for (size_t i = 0; i < values.size(); ++i) {
      std::string cell = FormatValue(values[i]);
      // Numeric metrics: how far each run is from the first.
      if (row.value("section", "") == "metric" && i > 0 && values[i].is_number() &&
          values[0].is_number() && differs) {
        char delta[32];
        std::snprintf(delta, sizeof delta, " (%+.4g)",
                      values[i].get<double>() - values[0].get<double>());
        cell += delta;
      }
      if (cell.size() > 60) cell = cell.substr(0, 57) + "...";  // --json has it whole
      line.push_back(cell);
    }
    rows.push_back(std::move(line));
  }
  PrintTable(rows);
  std::printf("\n%zu of %zu rows differ (marked *)\n", differing, table["rows"].size());
  return kExitOk;
}

}  // namespace

void AddMlopsCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<MlopsOptions>();
  o->state_dir = DefaultStateDir();
  auto state_dir = [&](CLI::App* cmd) {
    cmd->add_option("--state-dir", o->state_dir,
                    "State directory (default: $SLUICE_STATE_DIR or .sluice)");
  };
  auto on = [exit_code, o](CLI::App* cmd, int (*fn)(const MlopsOptions&)) {
    cmd->callback([exit_code, o, fn] { *exit_code = fn(*o); });
  };

  CLI::App* artifacts = app.add_subcommand(
      "artifacts", "Outputs of tasks, content-addressed (SHA-256), with their lineage");
  artifacts->require_subcommand(1);
  CLI::App* list = artifacts->add_subcommand("list", "Artifacts, newest first");
  list->add_option("--dag", o->dag, "Only those made in runs of this DAG");
  list->add_option("--run", o->run_id, "Only those made in this run");
  list->add_option("--limit", o->limit, "At most this many (default 50)");
  list->add_flag("--json", o->json, "Print JSON");
  state_dir(list);
  on(list, ArtifactsList);
  CLI::App* show =
      artifacts->add_subcommand("show", "One artifact: where it is, who made it, who read it");
  show->add_option("id", o->artifact, "Artifact id, or its first 6+ hex digits")->required();
  show->add_flag("--json", o->json, "Print JSON");
  state_dir(show);
  on(show, ArtifactsShow);
  CLI::App* lineage = artifacts->add_subcommand(
      "lineage",
      "Lineage as a tree: up, the tries that made it and what they read; down, the tries "
      "that read it and what they made");
  lineage->add_option("id", o->artifact, "Artifact id, or its first 6+ hex digits")->required();
  lineage->add_flag("--up", o->up, "Only what made it");
  lineage->add_flag("--down", o->down, "Only what was made from it");
  lineage->add_option("--depth", o->depth, "Levels of tries to follow (default: all)");
  lineage->add_flag("--json", o->json, "Print JSON");
  state_dir(lineage);
  on(lineage, ArtifactsLineage);
  artifacts->footer(
      "Examples:\n"
      "  sluice artifacts list --run manual__2026-11-27T15:04:05.123Z\n"
      "  sluice artifacts show 3f2a9c\n"
      "  sluice artifacts lineage 3f2a9c --up");

  CLI::App* gc = app.add_subcommand(
      "gc",
      "Remove artifacts that no run, cache entry or model version refers to, and what crashed "
      "tries left behind (objects without a record, work dirs). Needs the state dir to itself: "
      "stop the daemon first.");
  gc->add_flag("--dry-run", o->dry_run, "Say what would be removed; remove nothing");
  gc->add_flag("--json", o->json, "Print JSON");
  state_dir(gc);
  on(gc, Gc);

  CLI::App* runs = app.get_subcommand("runs");
  CLI::App* del = runs->add_subcommand(
      "delete",
      "Delete an ended run: its record, tries and logs (its events stay). Its artifacts are "
      "freed by the next `sluice gc` unless something else refers to them.");
  del->add_option("run", o->run_id, "Run id")->required()->check(RunIdProblem);
  del->add_option("--dag", o->dag, "The run's DAG, when several DAGs have that run id");
  state_dir(del);
  on(del, RunsDelete);
  CLI::App* compare = runs->add_subcommand(
      "compare",
      "Params, tags and metrics (each task's last value) of runs side by side; rows that "
      "differ are marked *, and metrics show their difference to the first run");
  compare->add_option("runs", o->runs, "Two or more run ids")->required();
  compare->add_option("--dag", o->dag, "The runs' DAG, when a run id is in several DAGs");
  compare->add_flag("--only-diff", o->only_diff, "Only rows that differ");
  compare->add_flag("--json", o->json, "Print JSON");
  state_dir(compare);
  on(compare, Compare);

  CLI::App* metrics = app.add_subcommand(
      "metrics", "Metrics of a run's tasks: a summary per metric, or every point");
  metrics->add_option("run", o->run_id, "Run id")->required()->check(RunIdProblem);
  metrics->add_option("task", o->task, "Only this task");
  metrics->add_option("--dag", o->dag, "The run's DAG, when several DAGs have that run id");
  metrics->add_flag("--steps", o->steps, "Every point (learning curves), not a summary");
  metrics->add_flag("--json", o->json, "Print JSON (every point and the summary)");
  metrics->add_flag("--csv", o->csv, "Print every point as CSV");
  state_dir(metrics);
  on(metrics, Metrics);
}

}  // namespace sluice::cli
