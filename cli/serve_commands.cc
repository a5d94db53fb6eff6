// `sluice serve`: the daemon: the trigger loop over a DAG folder, a local worker pool with
// durable state, the REST API with token auth, and Prometheus metrics.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "client.h"
#include "commands.h"
#include "common.h"
#include "engine_setup.h"
#include "server_config.h"
#include "sluice/api.h"
#include "sluice/http_server.h"
#include "sluice/local_executor.h"
#include "sluice/model_server.h"
#include "sluice/runner.h"
#include "sluice/scheduler.h"
#include "sluice/system_clock.h"
#include "sluice/tokens.h"

namespace sluice::cli {
namespace {

struct ServeOptions {
  std::string config;
  std::string dags;
  std::string listen;
  std::string state_dir;
  size_t workers = 0;
  size_t serving_workers = 0;
  std::string predict_timeout;
  std::vector<std::string> plugin_dirs;
  bool allow_unauthenticated = false;
};

// One line per run that starts or ends, for the daemon's log; and the metrics of task and run
// outcomes.
class RunLogger : public RunObserver {
 public:
  RunLogger(Metrics* metrics, const StateStore* store) : metrics_(metrics), store_(store) {
    metrics_->Declare("sluice_runs_finished_total", "counter", "Runs that ended, by DAG and state");
    metrics_->Declare("sluice_task_instances_finished_total", "counter",
                      "Task instances that ended, by DAG and state");
    metrics_->Declare("sluice_task_duration_seconds", "histogram",
                      "Duration of task tries that ran, by DAG", Metrics::DurationBuckets());
  }
  void OnRunChanged(const RunRecord& run) override {
    std::string why;
    if (run.state == RunState::kFailed) {
      // Which task failed, and why: the first failure, and how many more there were. The
      // run's end can be told before its last task's, so they are read from the store.
      std::vector<std::string> failed;
      if (StatusOr<std::vector<TryRecord>> tries = store_->ListTries(run.dag_id, run.run_id);
          tries.ok()) {
        std::map<std::string, const TryRecord*> latest;
        for (const TryRecord& t : *tries) {
          const TryRecord*& at = latest[t.task_id];
          if (at == nullptr || t.try_number >= at->try_number) at = &t;
        }
        for (const auto& [task, t] : latest) {
          if (t->state == TaskState::kFailed) failed.push_back(Describe(*t));
        }
      }
      if (!failed.empty()) why = ": " + failed.front();
      if (failed.size() > 1) why += " (and " + std::to_string(failed.size() - 1) + " more)";
    }
    std::printf("%s  run %s of DAG %s: %s%s\n",
                FormatTimestamp(std::chrono::system_clock::now()).c_str(), run.run_id.c_str(),
                run.dag_id.c_str(), std::string(RunStateName(run.state)).c_str(), why.c_str());
    std::fflush(stdout);

    if (run.state == RunState::kSuccess || run.state == RunState::kFailed) {
      metrics_->Add("sluice_runs_finished_total",
                    {{"dag", run.dag_id}, {"state", std::string(RunStateName(run.state))}});
    }
  }
  void OnTaskChanged(const RunRecord& run, const TryRecord& task) override {
    if (task.state == TaskState::kFailed || task.state == TaskState::kUpForRetry) {
      std::printf("%s  run %s of DAG %s: %s\n",
                  FormatTimestamp(std::chrono::system_clock::now()).c_str(), run.run_id.c_str(),
                  run.dag_id.c_str(), Describe(task).c_str());
      std::fflush(stdout);
    }
    if (!IsTerminal(task.state)) return;
    metrics_->Add("sluice_task_instances_finished_total",
                  {{"dag", run.dag_id}, {"state", std::string(TaskStateName(task.state))}});
    if (!task.started_at.empty() && task.try_number > 0) {
      metrics_->Observe("sluice_task_duration_seconds", {{"dag", run.dag_id}},
                        task.duration_seconds);
    }
  }

 private:
  static std::string Describe(const TryRecord& t) {
    return "task " + t.task_id + " " + std::string(TaskStateName(t.state)) + " (try " +
           std::to_string(t.try_number) + ")" + (t.reason.empty() ? "" : ": " + t.reason);
  }

  Metrics* metrics_;
  const StateStore* store_;
};

// Creates the "admin" token and writes its secret to <state_dir>/admin-token, mode 0600.
Status WriteBootstrapToken(Tokens* tokens, const std::string& state_dir) {
  StatusOr<std::string> secret =
      tokens->Create("admin", Role::kAdmin, "sluice serve (first start, no tokens)");
  if (!secret.ok()) return secret.status();
  const std::string path = AdminTokenPath(state_dir);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError("cannot write " + path + ": " + std::strerror(errno));
  const std::string line = *secret + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!written) return Status::IoError("cannot write " + path);
  return Status::Ok();
}

bool IsLoopback(const std::string& address) {
  boost::system::error_code ec;
  const auto ip = boost::asio::ip::make_address(address, ec);
  return !ec && ip.is_loopback();
}

// The gauges of /metrics: what is in progress now.
void SetGauges(Metrics* m, const Runner& runner, const LocalWorkerPool& pool,
               const Scheduler& scheduler) {
  m->Clear("sluice_runs_active");
  for (const auto& [dag, n] : runner.ActiveRunsByDag()) {
    m->Set("sluice_runs_active", {{"dag", dag}}, static_cast<double>(n));
  }
  m->Clear("sluice_task_instances_active");
  for (const auto& [state, n] : runner.ActiveTaskStates()) {
    m->Set("sluice_task_instances_active", {{"state", std::string(TaskStateName(state))}},
           static_cast<double>(n));
  }
  m->Set("sluice_queue_depth", {}, static_cast<double>(runner.queue_depth()));
  m->Set("sluice_tries_in_flight", {}, static_cast<double>(runner.in_flight()));
  m->Clear("sluice_pool_slots_used");
  for (const auto& [name, used] : runner.pool_usage()) {
    m->Set("sluice_pool_slots_used", {{"pool", name}}, used);
  }
  m->Clear("sluice_pool_slots");
  for (const auto& [name, slots] : runner.pool_slots()) {
    m->Set("sluice_pool_slots", {{"pool", name}}, slots);
  }
  m->Set("sluice_worker_restarts_total", {}, static_cast<double>(pool.restarts()));
  size_t invalid = 0;
  for (const auto& [path, entry] : scheduler.dags()) invalid += entry.errors.empty() ? 0 : 1;
  m->Set("sluice_dag_files", {{"valid", "true"}},
         static_cast<double>(scheduler.dags().size() - invalid));
  m->Set("sluice_dag_files", {{"valid", "false"}}, static_cast<double>(invalid));
}

void DeclareGauges(Metrics* m) {
  m->Declare("sluice_runs_active", "gauge", "Runs in progress, by DAG");
  m->Declare("sluice_task_instances_active", "gauge",
             "Task instances of runs in progress, by state");
  m->Declare("sluice_queue_depth", "gauge", "Tries ready and waiting for a worker or pool slot");
  m->Declare("sluice_tries_in_flight", "gauge", "Tries dispatched to workers and not yet ended");
  m->Declare("sluice_pool_slots_used", "gauge", "Pool slots in use, by pool");
  m->Declare("sluice_pool_slots", "gauge", "Pool slots configured, by pool");
  m->Declare("sluice_worker_restarts_total", "counter",
             "Workers started again after one died (crash, timeout kill, lost heartbeat)");
  m->Declare("sluice_dag_files", "gauge", "DAG files in the folder, by whether they validate");
}

int RunServe(ServeOptions o) {
  ServerConfig config;
  if (!o.config.empty()) {
    StatusOr<ServerConfig> loaded = LoadServerConfig(o.config);
    if (!loaded.ok()) {
      std::fprintf(stderr, "sluice serve: %s\n", loaded.status().message().c_str());
      return kExitUsage;
    }
    config = *std::move(loaded);
  }
  // Flags win over the file; the file wins over the defaults.
  if (o.dags.empty()) o.dags = config.dags.value_or("dags");
  if (o.listen.empty()) o.listen = config.listen.value_or("127.0.0.1:8080");
  if (o.state_dir.empty()) o.state_dir = config.state_dir.value_or(DefaultStateDir());
  if (o.workers == 0) o.workers = config.workers.value_or(0);
  for (const std::string& dir : config.plugin_dirs) o.plugin_dirs.push_back(dir);
  const bool allow_unauthenticated = o.allow_unauthenticated || config.allow_unauthenticated;
  const Duration grace = config.shutdown_grace.value_or(std::chrono::seconds(30));

  HttpServer::Options server_options;
  const size_t colon = o.listen.rfind(':');
  int port = colon == std::string::npos ? -1 : std::atoi(o.listen.c_str() + colon + 1);
  if (colon == std::string::npos || port < 0 || port > 65535) {
    std::fprintf(stderr, "sluice serve: --listen \"%s\" is not HOST:PORT (e.g. 127.0.0.1:8080)\n",
                 o.listen.c_str());
    return kExitUsage;
  }
  server_options.address = o.listen.substr(0, colon);
  server_options.port = static_cast<unsigned short>(port);
  if (allow_unauthenticated && !IsLoopback(server_options.address)) {
    std::fprintf(stderr,
                 "sluice serve: allow_unauthenticated is only allowed on a loopback address, not "
                 "%s; create tokens with `sluice tokens create` instead\n",
                 server_options.address.c_str());
    return kExitUsage;
  }

  StatusOr<std::unique_ptr<StateStore>> opened = OpenStateStore(o.state_dir);
  if (!opened.ok()) {
    std::fprintf(stderr, "sluice serve: %s\n", opened.status().message().c_str());
    return kExitUsage;
  }
  std::unique_ptr<StateStore> store = std::move(*opened);

  boost::asio::io_context io;
  SystemClock clock(io);
  PluginCatalog catalog;
  Metrics metrics;
  DeclareGauges(&metrics);
  RunnerOptions runner_options;
  runner_options.state_dir = o.state_dir;
  runner_options.actor = "scheduler (sluice serve, pid " + std::to_string(getpid()) + ")";
  runner_options.pools = config.pools;
  Runner runner(io, store.get(), &catalog, &clock, runner_options);
  LocalWorkerPool::Options pool_options;
  pool_options.workers = o.workers;
  LocalWorkerPool pool(io, pool_options, &runner);
  runner.AttachExecutor(&pool);
  RunLogger logger(&metrics, store.get());
  runner.SetObserver(&logger);
  Scheduler::Options scheduler_options;
  scheduler_options.dags_dir = o.dags;
  Scheduler scheduler(io, store.get(), &runner, &catalog, &clock, scheduler_options);
  scheduler.SetMetrics(&metrics);
  Tokens tokens(store.get());
  if (!tokens.load_status().ok()) {
    std::fprintf(stderr, "sluice serve: cannot read the API tokens: %s\n",
                 tokens.load_status().message().c_str());
    return kExitFailed;
  }
  Api::Options api_options;
  api_options.allow_unauthenticated = allow_unauthenticated;
  Api api(&scheduler, &runner, store.get(), &tokens, &metrics, api_options);
  api.OnScrape([&](Metrics* m) { SetGauges(m, runner, pool, scheduler); });
  ModelServer::Options serving_options;
  serving_options.workers =
      o.serving_workers > 0 ? o.serving_workers : config.serving_workers.value_or(0);
  if (!o.predict_timeout.empty()) {
    StatusOr<Duration> d = ParseDuration(o.predict_timeout);
    if (!d.ok() || *d <= Duration::zero()) {
      std::fprintf(stderr,
                   "sluice serve: --predict-timeout \"%s\" is not a positive duration like 10s\n",
                   o.predict_timeout.c_str());
      return kExitUsage;
    }
    config.predict_timeout = *d;
  }
  if (config.predict_timeout) {
    serving_options.request_timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(*config.predict_timeout);
  }
  ModelServer model_server(io, store.get(), &catalog, o.state_dir, &metrics, serving_options);
  api.SetModelServer(&model_server);
  HttpServer server(io, server_options,
                    [&api](const HttpRequest& request, HttpServer::Respond respond) {
                      api.HandleAsync(request, std::move(respond));
                    });
  // A run that ends frees a max_active_runs slot: look for owed intervals at once.
  runner.OnRunFinished([&](const RunRecord& run) { scheduler.RunEnded(run.dag_id); });
  // The store cannot record (a full disk): a daemon that cannot record must not act, so it
  // stops; a restart once room is made resumes what was in flight.
  runner.OnFatal([&](const Status&) {
    scheduler.Stop();
    server.Stop();
    pool.Shutdown();
    io.stop();
  });

  const std::string daemon_file = (std::filesystem::path(o.state_dir) / "daemon.json").string();
  int exit_code = kExitOk;
  if (!StartWithPlugins(pool, io, o.plugin_dirs, "serve", &catalog, &exit_code, [&] {
        // The port first: a daemon that cannot listen must not have scheduled anything (it
        // used to catch up owed intervals, then fail to bind and leave those runs running).
        // No request is served before the scheduler has started: both happen in this handler.
        Status s = server.Start();
        if (s.ok()) {
          s = scheduler.Start();
          if (!s.ok()) server.Stop();
        }
        if (!s.ok()) {
          std::fprintf(stderr, "sluice serve: %s\n", s.message().c_str());
          exit_code = kExitUsage;
          io.stop();
          return;
        }
        const std::string url =
            "http://" + server_options.address + ":" + std::to_string(server.port());
        if (!allow_unauthenticated && tokens.List().empty()) {
          // Nobody could make the first token while the daemon holds the state dir: make it
          // here, readable only by this user, where the CLI looks for it.
          Status made = WriteBootstrapToken(&tokens, o.state_dir);
          if (made.ok()) {
            std::printf(
                "sluice serve: created the first admin token (\"admin\"); it is in %s "
                "(mode 0600), and the CLI uses it when given no other\n",
                AdminTokenPath(o.state_dir).c_str());
          } else {
            std::fprintf(stderr, "sluice serve: cannot create the first admin token: %s\n",
                         made.message().c_str());
          }
        }
        // The CLI finds the daemon that owns this state dir here (after the token above).
        WriteDaemonFile(daemon_file, url);
        std::printf(
            "sluice serve: scheduling %zu DAG file(s) from %s; state in %s; API on %s/api/v1 "
            "(pid %d)%s\n",
            scheduler.dags().size(), o.dags.c_str(), o.state_dir.c_str(), url.c_str(),
            static_cast<int>(getpid()),
            allow_unauthenticated ? "; requests without a token are allowed (loopback)" : "");
        std::fflush(stdout);
      })) {
    return exit_code;
  }

  // SIGTERM or Ctrl-C: stop taking requests and creating runs, let running tries finish for
  // up to the grace period, then stop; what is still running is resumed at the next start.
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  boost::asio::steady_timer drain(io);
  std::function<void(std::chrono::steady_clock::time_point)> wait_for_tries =
      [&](std::chrono::steady_clock::time_point until) {
        if (runner.in_flight() == 0 || std::chrono::steady_clock::now() >= until) {
          if (runner.in_flight() > 0) {
            std::printf(
                "sluice serve: %zu tries still running after the grace period; they "
                "are retried at the next start\n",
                runner.in_flight());
          }
          io.stop();
          return;
        }
        drain.expires_after(std::chrono::milliseconds(50));
        drain.async_wait([&, until](boost::system::error_code ec) {
          if (!ec) wait_for_tries(until);
        });
      };
  signals.async_wait([&](boost::system::error_code ec, int signal) {
    if (ec) return;
    std::printf(
        "sluice serve: %s received; stopping: no new runs or tries, %zu running tries get up to "
        "%s to finish\n",
        signal == SIGTERM ? "SIGTERM" : "SIGINT", runner.in_flight(),
        FormatDuration(grace).c_str());
    std::fflush(stdout);
    scheduler.Stop();
    server.Stop();
    runner.StopDispatching();
    wait_for_tries(std::chrono::steady_clock::now() +
                   std::chrono::duration_cast<std::chrono::steady_clock::duration>(grace));
    // A second signal stops at once.
    signals.async_wait([&](boost::system::error_code ec2, int) {
      if (!ec2) io.stop();
    });
  });
  io.run();
  runner.Sync().IgnoreError();
  std::error_code ignored;
  std::filesystem::remove(daemon_file, ignored);
  if (!runner.fatal_error().ok()) {
    std::fprintf(stderr, "sluice serve: stopped: %s\n", runner.fatal_error().message().c_str());
    return kExitFailed;
  }
  std::printf("sluice serve: stopped\n");
  return exit_code;
}

}  // namespace

void AddServeCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* serve = app.add_subcommand(
      "serve",
      "Run the scheduler daemon: keep the DAG folder loaded (new, changed and deleted files are\n"
      "picked up), create a run for every data interval a scheduled DAG is owed (schedule,\n"
      "start_date/end_date, catchup, max_active_runs, pause), run backfills, and run it all in\n"
      "a local worker pool with durable state. Runs left unfinished by an earlier process are\n"
      "resumed at start. REST API under /api/v1 and Prometheus metrics at /metrics\n"
      "(docs/api.md); requests need a token (`sluice tokens create`; a daemon that starts with\n"
      "none writes a first admin token to STATE_DIR/admin-token). One daemon per state\n"
      "directory. SIGTERM or Ctrl-C stops it gracefully: running tries get shutdown_grace\n"
      "(30s) to finish.");
  serve->add_option("--config", o->config,
                    "TOML config file ([server], [auth], [pools]; docs/api.md); flags override it");
  serve->add_option("--dags", o->dags, "DAG folder (default: dags)");
  serve->add_option(
      "--listen", o->listen,
      "Address of the REST API, HOST:PORT (default 127.0.0.1:8080; port 0 picks one)");
  serve->add_option("--state-dir", o->state_dir,
                    "State directory (default: $SLUICE_STATE_DIR or .sluice)");
  serve->add_option("-w,--workers", o->workers, "Worker processes (default: number of cores)");
  serve->add_option("--predict-timeout", o->predict_timeout,
                    "A prediction not answered within this gets 504 and its serving worker is "
                    "restarted (default 10s)");
  serve->add_option("--serving-workers", o->serving_workers,
                    "Processes that run predictors for POST /api/v1/models/NAME/predict, started "
                    "on the first request (default: number of cores)");
  serve->add_option("--plugin-dir", o->plugin_dirs, "Also look for plugins here");
  serve->add_flag("--allow-unauthenticated", o->allow_unauthenticated,
                  "Accept requests without a token (as admin); only on a loopback address");
  serve->footer(
      "Examples:\n  sluice serve --dags dags --state-dir /var/lib/sluice\n"
      "  sluice serve --config /etc/sluice/sluice.toml\n"
      "  sluice serve --listen 127.0.0.1:8080 --allow-unauthenticated   # a laptop");
  serve->callback([o, exit_code] { *exit_code = RunServe(*o); });
}

}  // namespace sluice::cli
