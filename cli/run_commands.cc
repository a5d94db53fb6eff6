// `sluice run` (embedded mode: one DAG run in this process, with its own worker pool) and
// the hidden `sluice worker` that the engine starts.
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "commands.h"
#include "common.h"
#include "engine_setup.h"
#include "sluice/artifacts.h"
#include "sluice/dag_loader.h"
#include "sluice/local_executor.h"
#include "sluice/plugin_check.h"
#include "sluice/registry.h"
#include "sluice/runner.h"
#include "sluice/system_clock.h"
#include "sluice/tracking.h"
#include "sluice/worker.h"
#include "terminal.h"

namespace sluice::cli {
namespace {

using nlohmann::json;

struct RunOptions {
  std::string dag_file;
  std::vector<std::string> params;
  std::string state_dir;
  std::string resume;
  size_t workers = 0;
  std::vector<std::string> plugin_dirs;
  std::vector<std::string> pools;
  bool quiet = false;
  bool logs = false;
  bool no_cache = false;
  std::vector<std::string> tags;
  std::string note;
};

const char* StateColor(TaskState s) {
  switch (s) {
    case TaskState::kSuccess:
      return "\033[32m";
    case TaskState::kFailed:
    case TaskState::kUpstreamFailed:
      return "\033[31m";
    case TaskState::kUpForRetry:
      return "\033[33m";
    case TaskState::kRunning:
      return "\033[36m";
    case TaskState::kSkipped:
      return "\033[35m";
    default:
      return "";
  }
}

// Prints task transitions as they happen; on a terminal, keeps a status line at the bottom.
class ProgressPrinter : public RunObserver {
 public:
  // `logs`: print every line the tasks log, prefixed with the task (as docker compose does).
  // Without it a terminal's status line shows the last line a running task wrote.
  ProgressPrinter(boost::asio::io_context& io, size_t task_count, bool tty, bool color, bool quiet,
                  bool logs)
      : redraw_(io),
        task_count_(task_count),
        tty_(tty),
        color_(color),
        quiet_(quiet),
        logs_(logs),
        start_(std::chrono::steady_clock::now()) {}

  void OnTaskLog(const RunRecord& /*run*/, const TryRecord& t, int /*level*/,
                 std::string_view line) override {
    if (quiet_) return;
    if (logs_) {
      const std::string prefix = t.task_id + " | ";
      Print(Elapsed() + "  " + (color_ ? "\033[2m" + prefix + "\033[0m" : prefix) +
            OneLine(line, 0));
      return;
    }
    if (!tty_) return;
    last_task_ = t.task_id;
    last_line_ = std::string(line);
    // A task that floods its log redraws the status line at most 20 times a second; a line
    // held back is drawn when the 50 ms are up.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_drawn_ >= std::chrono::milliseconds(50)) {
      StatusLine();
    } else if (!redraw_pending_) {
      redraw_pending_ = true;
      redraw_.expires_at(last_drawn_ + std::chrono::milliseconds(50));
      redraw_.async_wait([this](boost::system::error_code ec) {
        redraw_pending_ = false;
        if (!ec) StatusLine();
      });
    }
  }

  void OnTaskChanged(const RunRecord& /*run*/, const TryRecord& t) override {
    auto previous = states_.find(t.task_id);
    if (previous != states_.end()) --counts_[previous->second];
    states_[t.task_id] = t.state;
    ++counts_[t.state];
    // A line can arrive before the try is reported running: only its end takes it away.
    if (t.task_id == last_task_ && (IsTerminal(t.state) || t.state == TaskState::kUpForRetry)) {
      last_line_.clear();
    }
    if (quiet_ || t.state == TaskState::kQueued || t.state == TaskState::kPending) return;
    // Big DAGs print only what needs attention; small ones print every step.
    const bool notable = t.state != TaskState::kRunning && t.state != TaskState::kSuccess;
    if (task_count_ > 100 && !notable) {
      StatusLine();
      return;
    }
    std::string line = Elapsed() + "  " + t.task_id + "  ";
    std::string state(TaskStateName(t.state));
    line += color_ ? std::string(StateColor(t.state)) + state + "\033[0m" : state;
    if (t.state == TaskState::kRunning) line += " (try " + std::to_string(t.try_number) + ")";
    if (t.state == TaskState::kSuccess && !t.cached_from.is_null()) {
      line += ", " + t.reason;
    } else if (t.state == TaskState::kSuccess) {
      line += " in " + FormatSeconds(t.duration_seconds);
    }
    if (!t.reason.empty() && t.state != TaskState::kSuccess && t.state != TaskState::kRunning) {
      line += ": " + t.reason;
    }
    Print(line);
  }

  void OnRunChanged(const RunRecord& run) override {
    if (quiet_) return;
    if (run.state == RunState::kRunning && !announced_) {
      announced_ = true;
      Print("run " + run.run_id + " of DAG " + run.dag_id + ": " + std::to_string(task_count_) +
            " tasks");
    }
  }

  void Finish() {
    redraw_.cancel();
    if (tty_ && status_shown_) std::fputs("\r\033[K", stdout);
    std::fflush(stdout);
  }

 private:
  std::string Elapsed() const {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    char buf[32];
    std::snprintf(buf, sizeof buf, "[%7.2fs]", s);
    return buf;
  }
  void Print(const std::string& line) {
    if (tty_ && status_shown_) std::fputs("\r\033[K", stdout);
    std::printf("%s\n", line.c_str());
    if (!tty_) std::fflush(stdout);  // a log file or pipe sees each line as it happens
    StatusLine();
  }
  void StatusLine() {
    if (!tty_) return;
    std::string status = Elapsed() + " ";
    for (TaskState s : {TaskState::kRunning, TaskState::kSuccess, TaskState::kFailed,
                        TaskState::kUpForRetry, TaskState::kSkipped, TaskState::kUpstreamFailed}) {
      if (counts_[s] > 0)
        status += " " + std::string(TaskStateName(s)) + " " + std::to_string(counts_[s]);
    }
    size_t ended = counts_[TaskState::kSuccess] + counts_[TaskState::kFailed] +
                   counts_[TaskState::kSkipped] + counts_[TaskState::kUpstreamFailed];
    status += "  (" + std::to_string(ended) + "/" + std::to_string(task_count_) + " done)";
    // The last line a running task wrote, cut to what the terminal has left.
    const size_t width = TerminalWidth(stdout);
    if (!last_line_.empty() && (width == 0 || status.size() + last_task_.size() + 8 < width)) {
      const std::string head = "  " + last_task_ + ": ";
      const size_t room = width == 0 ? 0 : width - 1 - status.size() - head.size();
      std::string tail = head + OneLine(last_line_, room);
      status += color_ ? "\033[2m" + tail + "\033[0m" : tail;
    }
    std::printf("\r\033[K%s", status.c_str());
    std::fflush(stdout);
    status_shown_ = true;
    last_drawn_ = std::chrono::steady_clock::now();
  }

  boost::asio::steady_timer redraw_;
  bool redraw_pending_ = false;
  size_t task_count_;
  bool tty_;
  bool color_;
  bool quiet_;
  bool logs_;
  bool announced_ = false;
  bool status_shown_ = false;
  std::string last_task_;
  std::string last_line_;
  std::chrono::steady_clock::time_point last_drawn_{};
  std::chrono::steady_clock::time_point start_;
  std::map<std::string, TaskState> states_;
  std::map<TaskState, size_t> counts_;
};

void PrintDiagnostics(const Diagnostics& diagnostics, const std::string& source, bool color) {
  RenderOptions options;
  options.color = color;
  options.source = source;
  for (const Diagnostic& d : diagnostics.items()) std::fputs(Render(d, options).c_str(), stderr);
}

std::string FormatMetric(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf,
                std::abs(v) >= 1e5 || (v != 0 && std::abs(v) < 1e-3) ? "%.3g" : "%.4f", v);
  std::string text = buf;
  // 0.9650 -> 0.965, 3.0000 -> 3
  if (text.find('.') != std::string::npos && text.find('e') == std::string::npos) {
    while (text.back() == '0') text.pop_back();
    if (text.back() == '.') text.pop_back();
  }
  return text;
}

// A predict request for a served model folder: its card's example row, or one row of the
// training medians (and most frequent levels) from its preprocess.json; "" when it has neither.
std::string ExampleRequest(const std::string& state_dir, const std::string& artifact) {
  const std::filesystem::path dir =
      ArtifactStore(ArtifactStore::RootFor(state_dir)).PathOf(artifact, "dir");
  // A model card's own example row (a Python model's, from ctx.output_model), else one made of
  // the train plugin's imputation values (the training medians and modes).
  std::ifstream card_file(dir / "sluice-model.json");
  const json card = json::parse(card_file, nullptr, false);
  if (card.is_object() && card.contains("example") && card["example"].is_object()) {
    return json{{"rows", {card["example"]}}}.dump();
  }
  std::ifstream in(dir / "preprocess.json");
  const json pre = json::parse(in, nullptr, false);
  if (pre.is_discarded() || !pre.contains("columns")) return "";
  json row = json::object();
  for (const json& c : pre["columns"]) {
    if (!c.contains("name") || !c.contains("impute")) return "";
    const json& v = c["impute"];
    row[c["name"].get<std::string>()] =
        v.is_number() ? json(std::stod(FormatMetric(v.get<double>()))) : v;
  }
  return json{{"rows", {row}}}.dump();
}

// What a run produced that people look at first: its final metrics (one column per task
// that logged some; curves and per-class figures are left to `sluice metrics`) and where the
// registered models it touched stand now.
void PrintResults(StateStore& store, const std::string& state_dir, const RunRecord& run,
                  const Dag& dag) {
  StatusOr<json> tracking = RunTracking(store, run, "");
  if (!tracking.ok()) return;
  std::vector<std::string> tasks;
  std::map<std::string, std::map<std::string, double>> table;  // metric -> task -> value
  size_t hidden = 0;
  size_t hidden_curves = 0;  // logged with steps
  size_t hidden_dotted = 0;  // named a.b (per class, per feature, ...)
  std::string dotted_example;
  std::set<std::string> models;
  for (const auto& [task, data] : (*tracking)["tasks"].items()) {
    bool shown = false;
    const json summaries = data.value("summary", json::object());
    for (const auto& [name, summary] : summaries.items()) {
      if (summary.contains("last_step") || name.find('.') != std::string::npos ||
          !summary["last"].is_number()) {
        ++hidden;
        if (summary.contains("last_step")) {
          ++hidden_curves;
        } else if (name.find('.') != std::string::npos) {
          ++hidden_dotted;
          if (dotted_example.empty()) dotted_example = name;
        }
        continue;
      }
      table[name][task] = summary["last"].get<double>();
      shown = true;
    }
    if (shown) tasks.push_back(task);
    std::string listed = data.value("tags", json::object()).value("models", "");
    for (size_t start = 0; !listed.empty() && start <= listed.size();) {
      size_t comma = listed.find(',', start);
      if (comma == std::string::npos) comma = listed.size();
      models.insert(listed.substr(start, comma - start));
      start = comma + 1;
    }
  }
  if (!table.empty()) {
    std::map<std::string, size_t> order;  // columns in the DAG's order
    for (uint32_t i : dag.topological_order()) order.emplace(dag.tasks()[i].id, order.size());
    std::sort(tasks.begin(), tasks.end(),
              [&](const std::string& a, const std::string& b) { return order[a] < order[b]; });
    std::vector<std::vector<std::string>> rows = {{"METRIC"}};
    for (const std::string& t : tasks) rows[0].push_back(t);
    for (const auto& [name, values] : table) {
      std::vector<std::string> row = {name};
      for (const std::string& t : tasks) {
        auto it = values.find(t);
        row.push_back(it == values.end() ? "" : FormatMetric(it->second));
      }
      rows.push_back(std::move(row));
    }
    std::printf("\n");
    PrintTable(rows);
    if (hidden > 0) {
      // Say what is left out as what it is: a dotted name is not necessarily per class.
      std::string what;
      if (hidden_curves > 0) what += std::to_string(hidden_curves) + " logged per step";
      if (hidden_dotted > 0) {
        what += (what.empty() ? "" : ", ") + std::to_string(hidden_dotted) +
                " with dotted names such as " + dotted_example;
      }
      const size_t other = hidden - hidden_curves - hidden_dotted;
      if (other > 0) what += (what.empty() ? "" : ", ") + std::to_string(other) + " not numbers";
      std::printf("(%zu more metrics in `sluice metrics %s`: %s)\n", hidden, run.run_id.c_str(),
                  what.c_str());
    }
  }
  ModelRegistry registry(&store);
  for (const std::string& name : models) {
    StatusOr<Model> model = registry.GetModel(name);
    if (!model.ok()) continue;
    std::printf("\nmodel %s: %d version%s", name.c_str(), model->latest_version,
                model->latest_version == 1 ? "" : "s");
    for (const auto& [alias, a] : model->aliases)
      std::printf(", %s = v%d", alias.c_str(), a.version);
    std::printf("\n  details:  sluice models show %s\n", name.c_str());
    StatusOr<ModelVersion> production = registry.Resolve(name, "production");
    if (!production.ok()) continue;
    std::printf("  made by:  task %s of %s run %s\n", production->task_id.c_str(),
                production->dag_id.c_str(), production->run_id.c_str());
    const std::string request = ExampleRequest(state_dir, production->artifact);
    if (request.empty()) continue;
    const std::string flag = state_dir == ".sluice" ? "" : " --state-dir " + state_dir;
    std::printf(
        "  serve it: sluice serve%s   (in another terminal)\n"
        "  query it: curl -s http://127.0.0.1:8080/api/v1/models/%s/predict -H \"Authorization: "
        "Bearer $(cat %s/admin-token)\" -d '%s'\n",
        flag.c_str(), name.c_str(), state_dir.c_str(), request.c_str());
  }
}

void PrintSummary(StateStore& store, const std::string& state_dir, const RunRecord& run,
                  const Dag& dag, double seconds) {
  std::map<std::string, TryRecord> latest;
  std::map<std::string, int> tries;
  StatusOr<std::vector<TryRecord>> stored = store.ListTries(run.dag_id, run.run_id);
  if (!stored.ok()) {
    std::fprintf(stderr, "sluice run: %s\n", stored.status().message().c_str());
    return;
  }
  for (TryRecord& t : *stored) {
    tries[t.task_id] = std::max(tries[t.task_id], t.try_number);
    latest[t.task_id] = std::move(t);
  }
  std::printf("\n");
  if (dag.size() <= 50) {
    std::vector<std::vector<std::string>> rows = {{"TASK", "STATE", "TRIES", "DURATION", "NOTE"}};
    std::vector<std::string> whole;
    for (uint32_t i : dag.topological_order()) {
      const std::string& id = dag.tasks()[i].id;
      auto it = latest.find(id);
      if (it == latest.end()) {
        rows.push_back({id, "pending", "0", "-", ""});
        continue;
      }
      const TryRecord& t = it->second;
      std::string note = t.state == TaskState::kSuccess && t.cached_from.is_null() ? "" : t.reason;
      note = TableNote(id, "", note, &whole);
      rows.push_back({id, std::string(TaskStateName(t.state)), std::to_string(tries[id]),
                      t.try_number > 0 ? FormatSeconds(t.duration_seconds) : "-", note});
    }
    PrintTable(rows);
    PrintWholeNotes(whole);
  } else {
    std::map<std::string, size_t> counts;
    for (const auto& [id, t] : latest) ++counts[std::string(TaskStateName(t.state))];
    for (const auto& [state, n] : counts) std::printf("  %-16s %zu\n", state.c_str(), n);
  }
  PrintResults(store, state_dir, run, dag);
  std::printf("\nrun %s of DAG %s: %s in %s\n", run.run_id.c_str(), run.dag_id.c_str(),
              std::string(RunStateName(run.state)).c_str(), FormatSeconds(seconds).c_str());
  std::printf("  logs:   sluice logs %s TASK\n  events: sluice events %s\n", run.run_id.c_str(),
              run.run_id.c_str());
}

int RunRun(const RunOptions& options, const GlobalOptions& global) {
  ColorMode color_mode = ColorMode::kAuto;
  ParseColorMode(global.color, &color_mode);
  const bool color_err = UseColor(color_mode, stderr);
  const char* term = std::getenv("TERM");
  const bool tty = isatty(fileno(stdout)) == 1 && term != nullptr && std::string(term) != "dumb";

  // The state store first: a resumed run brings its own DAG.
  StatusOr<std::unique_ptr<StateStore>> opened = OpenStateStore(options.state_dir);
  if (!opened.ok()) {
    std::fprintf(stderr, "sluice run: %s\n", opened.status().message().c_str());
    return kExitFailed;
  }
  std::unique_ptr<StateStore> store = std::move(*opened);

  std::shared_ptr<const Dag> dag;
  std::string dag_source;
  RunRecord resumed;
  json params;
  if (!options.resume.empty()) {
    StatusOr<RunRecord> run = store->FindRun(options.resume);
    if (!run.ok()) {
      std::fprintf(stderr, "sluice run --resume: %s\n", run.status().message().c_str());
      return kExitUsage;
    }
    resumed = *run;
    DagLoadResult loaded = LoadDagText(run->dag_source, run->dag_path);
    if (!loaded.ok()) {
      PrintDiagnostics(loaded.diagnostics, loaded.source, color_err);
      return kExitFailed;
    }
    dag = std::move(loaded.dag);
  } else {
    if (options.dag_file.empty()) {
      std::fprintf(stderr, "sluice run: give a DAG file, or --resume RUN_ID\n");
      return kExitUsage;
    }
    DagLoadResult loaded = LoadDagFile(options.dag_file);
    if (!loaded.ok()) {
      PrintDiagnostics(loaded.diagnostics, loaded.source, color_err);
      std::fprintf(stderr, "sluice run: %s is not a valid DAG; nothing was run\n",
                   options.dag_file.c_str());
      return kExitFailed;
    }
    dag_source = loaded.source;
    dag = std::move(loaded.dag);
    StatusOr<json> resolved = ResolveRunParams(dag->spec(), options.params);
    if (!resolved.ok()) {
      std::fprintf(stderr, "sluice run: %s\n", resolved.status().message().c_str());
      return kExitUsage;
    }
    params = *resolved;
  }

  StatusOr<json> tags = ParseTags(options.tags);
  if (!tags.ok()) {
    std::fprintf(stderr, "sluice run: %s\n", tags.status().message().c_str());
    return kExitUsage;
  }
  RunnerOptions runner_options;
  runner_options.state_dir = options.state_dir;
  runner_options.actor = CliActor("sluice run");
  for (const std::string& pool : options.pools) {
    size_t eq = pool.find('=');
    int slots = eq == std::string::npos ? -1 : std::atoi(pool.c_str() + eq + 1);
    if (eq == std::string::npos || eq == 0 || slots <= 0) {
      std::fprintf(stderr, "sluice run: --pool \"%s\" is not NAME=SLOTS with SLOTS >= 1\n",
                   pool.c_str());
      return kExitUsage;
    }
    runner_options.pools[pool.substr(0, eq)] = slots;
  }

  boost::asio::io_context io;
  SystemClock clock(io);
  PluginCatalog catalog;
  Runner runner(io, store.get(), &catalog, &clock, runner_options);
  LocalWorkerPool::Options pool_options;
  pool_options.workers = options.workers;
  LocalWorkerPool pool(io, pool_options, &runner);
  runner.AttachExecutor(&pool);
  ProgressPrinter progress(io, dag->size(), tty, UseColor(color_mode, stdout), options.quiet,
                           options.logs);
  if (!options.quiet) runner.SetObserver(&progress);  // quiet: the summary reads the store

  int exit_code = kExitFailed;
  std::optional<RunRecord> finished;
  const auto start = std::chrono::steady_clock::now();
  std::string run_id;
  runner.OnRunFinished([&](const RunRecord& run) {
    finished = run;
    exit_code = run.state == RunState::kSuccess ? kExitOk : kExitFailed;
    pool.Shutdown();
    io.stop();
  });
  // The store cannot record (a full disk): stop at once; --resume continues from what was
  // durable.
  runner.OnFatal([&](const Status&) {
    pool.Shutdown();
    io.stop();
  });

  if (!StartWithPlugins(pool, io, options.plugin_dirs, "run", &catalog, &exit_code, [&] {
        Diagnostics problems;
        CheckDagAgainstPlugins(*dag, catalog, &problems);
        if (problems.has_errors()) {
          PrintDiagnostics(problems, options.resume.empty() ? dag_source : resumed.dag_source,
                           color_err);
          std::fprintf(stderr,
                       "sluice run: the DAG does not fit the installed plugins; nothing was run\n");
          exit_code = kExitFailed;
          io.stop();
          return;
        }
        StatusOr<RunRecord> run = Status::Internal("unset");
        if (!options.resume.empty()) {
          run = runner.Resume(resumed.dag_id, resumed.run_id);
        } else {
          TriggerRequest request;
          request.dag = dag;
          request.dag_source = dag_source;
          request.params = params;
          request.no_cache = options.no_cache;
          request.tags = *tags;
          request.note = options.note;
          run = runner.Trigger(std::move(request));
        }
        if (!run.ok()) {
          std::fprintf(stderr, "sluice run: %s\n", run.status().message().c_str());
          exit_code = kExitUsage;
          io.stop();
          return;
        }
        run_id = run->run_id;
      })) {
    return exit_code;
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  bool interrupted = false;
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    interrupted = true;
    io.stop();
  });
  io.run();
  progress.Finish();

  if (!runner.fatal_error().ok()) {
    std::fprintf(stderr, "sluice run: stopped: %s\n", runner.fatal_error().message().c_str());
    if (!run_id.empty()) {
      std::fprintf(
          stderr, "  resume with: sluice run --resume %s%s\n", run_id.c_str(),
          options.state_dir == ".sluice" ? "" : (" --state-dir " + options.state_dir).c_str());
    }
    return kExitFailed;
  }
  if (interrupted) {
    std::fprintf(stderr, "\nsluice run: interrupted; tries in flight were stopped.\n");
    if (!run_id.empty()) {
      std::fprintf(
          stderr, "  resume with: sluice run --resume %s%s\n", run_id.c_str(),
          options.state_dir == ".sluice" ? "" : (" --state-dir " + options.state_dir).c_str());
    }
    return 130;
  }
  if (finished) {
    if (!options.quiet || finished->state != RunState::kSuccess) {
      PrintSummary(*store, options.state_dir, *finished, *dag,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  return exit_code;
}

}  // namespace

void AddRunCommands(CLI::App& app, const GlobalOptions& global, int* exit_code) {
  auto options = std::make_shared<RunOptions>();
  options->state_dir = DefaultStateDir();
  CLI::App* run = app.add_subcommand(
      "run",
      "Run a DAG once, to completion, in this process (embedded mode: no daemon).\n"
      "Tasks run in a pool of worker processes; every state change is recorded in the state\n"
      "directory before it is acted on. Exit code 0 when the run succeeds; 1 when it fails,\n"
      "or the DAG is invalid or does not fit the plugins; 2 for bad usage, such as a --param\n"
      "the DAG does not declare (an invalid DAG or bad usage runs nothing).");
  run->add_option("dag", options->dag_file, "DAG file")->check(CLI::ExistingFile);
  run->add_option(
      "-p,--param", options->params,
      "Override a run param: NAME=VALUE (VALUE is JSON when it parses, text otherwise)");
  run->add_option("--state-dir", options->state_dir,
                  "State directory (default: $SLUICE_STATE_DIR or .sluice)");
  run->add_option(
         "--resume", options->resume,
         "Finish an interrupted run: tasks that succeeded are not run again; tries that were "
         "in flight count as failed tries and are retried per their policy")
      ->check(RunIdProblem);
  run->add_option("-w,--workers", options->workers, "Worker processes (default: number of cores)");
  run->add_option(
      "--plugin-dir", options->plugin_dirs,
      "Also look for plugins here (before $SLUICE_PLUGIN_PATH and the default folders)");
  run->add_option("--pool", options->pools,
                  "Limit a pool: NAME=SLOTS (pools not given have no limit)");
  run->add_flag("-q,--quiet", options->quiet, "Print nothing but a failure summary");
  run->add_flag("--logs", options->logs,
                "Print every line the tasks log as it is written, prefixed with the task "
                "(without it a terminal shows a running task's last line)");
  run->add_flag("--no-cache", options->no_cache,
                "Recompute tasks with cache = true instead of reusing earlier results (the new "
                "results replace the cached ones)");
  run->add_option("--tag", options->tags,
                  "Tag the run: NAME=VALUE (repeatable); `sluice runs compare` shows tags");
  run->add_option("--note", options->note, "A note kept with the run");
  run->footer(
      "Examples:\n"
      "  sluice run dags/hello.toml\n"
      "  sluice run dags/hello.toml --param greeting=Hi --workers 4\n"
      "  sluice run dags/hello.toml --no-cache --tag experiment=baseline\n"
      "  sluice run --resume manual__2026-11-27T15:04:05.123Z");
  run->callback([options, &global, exit_code] { *exit_code = RunRun(*options, global); });

  auto fd = std::make_shared<int>(-1);
  CLI::App* worker =
      app.add_subcommand("worker", "Internal: a worker process started by the engine");
  worker->group("");  // hidden from --help: users never start workers by hand
  worker->add_option("--fd", *fd, "Connected socket to the engine")->required();
  // SIGPIPE keeps its default: commands that steps start inherit the worker's signal
  // dispositions, and pipelines rely on it. The worker writes with MSG_NOSIGNAL instead.
  worker->callback([fd, exit_code] { *exit_code = RunWorker(*fd); });

  CLI::App* serving = app.add_subcommand(
      "serve-worker", "Internal: a serving worker process started by `sluice serve`");
  serving->group("");
  serving->add_option("--fd", *fd, "Connected socket to the daemon")->required();
  serving->callback([fd, exit_code] { *exit_code = RunServingWorker(*fd); });
}

}  // namespace sluice::cli
