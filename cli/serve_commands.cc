// `sluice serve`: the daemon. For now: the trigger loop over a DAG folder, with a local
// worker pool and durable state; the REST API, the web UI and metrics come next.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>

#include "commands.h"
#include "common.h"
#include "engine_setup.h"
#include "sluice/api.h"
#include "sluice/http_server.h"
#include "sluice/local_executor.h"
#include "sluice/runner.h"
#include "sluice/scheduler.h"
#include "sluice/system_clock.h"

namespace sluice::cli {
namespace {

struct ServeOptions {
  std::string dags = "dags";
  std::string listen = "127.0.0.1:8080";
  std::string state_dir;
  size_t workers = 0;
  std::vector<std::string> plugin_dirs;
};

// One line per run that starts or ends, for the daemon's log.
class RunLogger : public RunObserver {
 public:
  void OnRunChanged(const RunRecord& run) override {
    std::printf("%s  run %s of DAG %s: %s\n",
                FormatTimestamp(std::chrono::system_clock::now()).c_str(), run.run_id.c_str(),
                run.dag_id.c_str(), std::string(RunStateName(run.state)).c_str());
    std::fflush(stdout);
  }
};

int RunServe(const ServeOptions& o) {
  StatusOr<std::unique_ptr<StateStore>> opened = StateStore::Open(o.state_dir);
  if (!opened.ok()) {
    std::fprintf(stderr, "sluice serve: %s\n", opened.status().message().c_str());
    return kExitUsage;
  }
  std::unique_ptr<StateStore> store = std::move(*opened);

  boost::asio::io_context io;
  SystemClock clock(io);
  PluginCatalog catalog;
  RunnerOptions runner_options;
  runner_options.state_dir = o.state_dir;
  runner_options.actor = "scheduler (sluice serve, pid " + std::to_string(getpid()) + ")";
  Runner runner(io, store.get(), &catalog, &clock, runner_options);
  LocalWorkerPool::Options pool_options;
  pool_options.workers = o.workers;
  LocalWorkerPool pool(io, pool_options, &runner);
  runner.AttachExecutor(&pool);
  RunLogger logger;
  runner.SetObserver(&logger);
  Scheduler::Options scheduler_options;
  scheduler_options.dags_dir = o.dags;
  Scheduler scheduler(io, store.get(), &runner, &catalog, &clock, scheduler_options);
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
  Api api(&scheduler, &runner, store.get());
  HttpServer server(io, server_options,
                    [&api](const HttpRequest& request) { return api.Handle(request); });
  // A run that ends frees a max_active_runs slot: look for owed intervals at once.
  runner.OnRunFinished([&](const RunRecord&) { boost::asio::post(io, [&] { scheduler.Tick(); }); });

  int exit_code = kExitOk;
  if (!StartWithPlugins(pool, io, o.plugin_dirs, "serve", &catalog, &exit_code, [&] {
        Status s = scheduler.Start();
        if (s.ok()) s = server.Start();
        if (!s.ok()) {
          std::fprintf(stderr, "sluice serve: %s\n", s.message().c_str());
          exit_code = kExitUsage;
          io.stop();
          return;
        }
        std::printf(
            "sluice serve: scheduling %zu DAG file(s) from %s; state in %s; API on "
            "http://%s:%u/api/v1 (pid %d)\n",
            scheduler.dags().size(), o.dags.c_str(), o.state_dir.c_str(),
            server_options.address.c_str(), static_cast<unsigned>(server.port()),
            static_cast<int>(getpid()));
        std::fflush(stdout);
      })) {
    return exit_code;
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int signal) {
    if (ec) return;
    std::printf("sluice serve: %s received; stopping (runs in progress resume at the next start)\n",
                signal == SIGTERM ? "SIGTERM" : "SIGINT");
    scheduler.Stop();
    io.stop();
  });
  io.run();
  if (!runner.fatal_error().ok()) {
    std::fprintf(stderr, "sluice serve: stopped: %s\n", runner.fatal_error().message().c_str());
    return kExitFailed;
  }
  return exit_code;
}

}  // namespace

void AddServeCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ServeOptions>();
  o->state_dir = DefaultStateDir();
  CLI::App* serve = app.add_subcommand(
      "serve",
      "Run the scheduler daemon: keep the DAG folder loaded (new, changed and deleted files are\n"
      "picked up), create a run for every data interval a scheduled DAG is owed (schedule,\n"
      "start_date/end_date, catchup, max_active_runs), and run them in a local worker pool\n"
      "with durable state. Runs left unfinished by an earlier process are resumed at start.\n"
      "REST API under /api/v1 (docs/api.md). One daemon per state directory. SIGTERM or\n"
      "Ctrl-C stops it.");
  serve->add_option("--dags", o->dags, "DAG folder (default: dags)");
  serve->add_option(
      "--listen", o->listen,
      "Address of the REST API, HOST:PORT (default 127.0.0.1:8080; port 0 picks one)");
  serve->add_option("--state-dir", o->state_dir,
                    "State directory (default: $SLUICE_STATE_DIR or .sluice)");
  serve->add_option("-w,--workers", o->workers, "Worker processes (default: number of cores)");
  serve->add_option("--plugin-dir", o->plugin_dirs, "Also look for plugins here");
  serve->footer("Example:\n  sluice serve --dags dags --state-dir /var/lib/sluice");
  serve->callback([o, exit_code] { *exit_code = RunServe(*o); });
}

}  // namespace sluice::cli
