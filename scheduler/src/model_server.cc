#include "sluice/model_server.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "sluice/artifacts.h"
#include "sluice/child_process.h"
#include "sluice/json_limits.h"
#include "sluice/metrics.h"
#include "sluice/plugin_abi.h"
#include "sluice/plugin_host.h"
#include "sluice/registry.h"
#include "sluice/state_store.h"
#include "sluice/worker_protocol.h"

namespace sluice {

namespace asio = boost::asio;
using nlohmann::json;
using protocol::Type;

namespace {

std::string NowIso() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string ErrorBody(const std::string& code, const std::string& message) {
  return json{{"error", {{"code", code}, {"message", message}}}}.dump();
}

std::string SlotName(const std::string& model, int version) {
  return model + "@" + std::to_string(version);
}

struct ServingWorker {
  explicit ServingWorker(asio::io_context& io) : socket(io), output(io) {}
  size_t index = 0;
  pid_t pid = -1;
  asio::local::stream_protocol::socket socket;
  asio::posix::stream_descriptor output;
  std::array<char, 65536> read_buffer{};
  std::array<char, 4096> output_buffer{};
  std::string output_pending;
  protocol::FrameDecoder decoder;
  std::string outgoing;
  std::string in_write;
  bool writing = false;
  bool dead = false;
  bool ready = false;      // has every loaded model, takes requests
  size_t catching_up = 0;  // loads sent at start that have not answered yet
  size_t in_flight = 0;    // requests sent, not answered
};

}  // namespace

struct ModelServer::Impl : std::enable_shared_from_this<ModelServer::Impl> {
  Impl(asio::io_context& io_context, StateStore* s, const PluginCatalog* c, std::string dir,
       Metrics* m, Options o)
      : io(io_context),
        store(s),
        catalog(c),
        state_dir(std::move(dir)),
        metrics(m),
        options(std::move(o)),
        watch_timer(io_context) {}

  // A model version loaded (or loading) in every worker.
  struct Slot {
    std::string model;
    int version = 0;
    std::string dir, predictor, file;
    bool ready = false;
    std::set<size_t> waiting;  // workers whose load has not answered
    std::string error;         // the first load failure
    std::vector<std::function<void(const std::string& error)>> waiters;
    std::string loaded_at;
  };
  // What an alias of a model is served by.
  struct Route {
    std::string model, alias;
    std::string current;  // slot name, "" until the first request has loaded it
    std::string since;
    int loading = 0;  // a version being loaded to replace `current`
    int failed_version = 0;
    std::string failed_error, failed_at;
  };
  struct Load {
    std::string slot;
    size_t worker = 0;
    bool catch_up = false;  // a started-again worker loading what the others have
  };
  struct Request {
    Reply reply;
    size_t worker = 0;
    std::string model;
    std::chrono::steady_clock::time_point started;
  };

  asio::io_context& io;
  StateStore* store;
  const PluginCatalog* catalog;
  std::string state_dir;
  Metrics* metrics;
  Options options;
  asio::steady_timer watch_timer;
  bool started = false;
  bool shutting_down = false;
  std::vector<std::shared_ptr<ServingWorker>> workers;
  std::map<std::string, Slot> slots;
  std::map<std::string, Route> routes;  // "model\nalias"
  std::set<std::string> pinned;         // slots asked for by version
  std::map<int64_t, Load> loads;
  std::map<int64_t, Request> requests;
  int64_t next_id = 1;

  void EnsureStarted() {
    if (started || shutting_down) return;
    started = true;
    if (options.worker_command.empty()) options.worker_command = {SelfExecutable(), "serve-worker"};
    size_t n = options.workers;
    if (n == 0) n = std::max<size_t>(1, std::thread::hardware_concurrency());
    for (size_t i = 0; i < n; ++i) Spawn(i);
    ArmWatch();
  }

  void Spawn(size_t index) {
    StatusOr<ChildProcess> child = SpawnChild(options.worker_command);
    if (!child.ok()) {
      std::fprintf(stderr, "sluice serve: cannot start a serving worker: %s\n",
                   child.status().message().c_str());
      return;
    }
    auto w = std::make_shared<ServingWorker>(io);
    w->index = index;
    w->pid = child->pid;
    w->socket.assign(asio::local::stream_protocol(), child->socket_fd);
    w->output.assign(child->output_fd);
    if (index < workers.size()) {
      workers[index] = w;
    } else {
      workers.push_back(w);
    }
    // Catch up: everything the others have (or are loading) before taking requests.
    for (auto& [name, slot] : slots) {
      SendLoad(w, name, slot, /*catch_up=*/slot.ready);
      if (slot.ready) {
        ++w->catching_up;
      } else {
        slot.waiting.insert(index);
      }
    }
    w->ready = w->catching_up == 0;
    StartReading(w);
    StartReadingOutput(w);
  }

  void SendLoad(const std::shared_ptr<ServingWorker>& w, const std::string& name, const Slot& slot,
                bool catch_up) {
    const int64_t id = next_id++;
    loads[id] = {name, w->index, catch_up};
    Send(w, Type::kLoadModel,
         json{{"id", id},
              {"slot", name},
              {"file", slot.file},
              {"predictor", slot.predictor},
              {"dir", slot.dir},
              {"model", slot.model},
              {"version", slot.version}}
             .dump());
  }

  void Send(const std::shared_ptr<ServingWorker>& w, Type type, const std::string& payload) {
    if (w->dead) return;
    w->outgoing += protocol::EncodeFrame(type, payload);
    if (!w->writing) StartWrite(w);
  }

  void StartWrite(const std::shared_ptr<ServingWorker>& w) {
    w->writing = true;
    w->in_write.swap(w->outgoing);
    w->outgoing.clear();
    auto self = shared_from_this();
    asio::async_write(w->socket, asio::buffer(w->in_write),
                      [self, w](boost::system::error_code ec, size_t) {
                        w->writing = false;
                        w->in_write.clear();
                        if (ec || w->dead) return;
                        if (!w->outgoing.empty()) self->StartWrite(w);
                      });
  }

  void StartReading(const std::shared_ptr<ServingWorker>& w) {
    auto self = shared_from_this();
    w->socket.async_read_some(asio::buffer(w->read_buffer),
                              [self, w](boost::system::error_code ec, size_t n) {
                                if (w->dead) return;
                                if (ec) return self->HandleDeath(w, "exited");
                                w->decoder.Append(w->read_buffer.data(), n);
                                Type type;
                                std::string payload;
                                while (!w->dead && w->decoder.Next(&type, &payload))
                                  self->HandleFrame(w, type, payload);
                                if (w->dead) return;
                                if (w->decoder.corrupt())
                                  return self->HandleDeath(w, "sent a corrupt message");
                                self->StartReading(w);
                              });
  }

  // A worker's stdout and stderr (a predictor's own prints) go to the daemon's stderr.
  void StartReadingOutput(const std::shared_ptr<ServingWorker>& w) {
    auto self = shared_from_this();
    w->output.async_read_some(
        asio::buffer(w->output_buffer), [self, w](boost::system::error_code ec, size_t n) {
          if (ec) return;
          w->output_pending.append(w->output_buffer.data(), n);
          size_t start = 0;
          for (size_t nl; (nl = w->output_pending.find('\n', start)) != std::string::npos;
               start = nl + 1) {
            std::fprintf(stderr, "serving worker %d: %.*s\n", static_cast<int>(w->pid),
                         static_cast<int>(nl - start), w->output_pending.data() + start);
          }
          w->output_pending.erase(0, start);
          self->StartReadingOutput(w);
        });
  }

  void HandleFrame(const std::shared_ptr<ServingWorker>& w, Type type, const std::string& payload) {
    if (type == Type::kPredicted) return OnPredicted(w, payload);
    if (type != Type::kLoaded) return;  // kHello
    StatusOr<json> parsed = ParseJson(payload, "a serving worker frame", kFrameJsonLimits);
    if (!parsed.ok() || !parsed->is_object()) return;
    json body = std::move(parsed).value();
    auto it = loads.find(body.value("id", int64_t{0}));
    if (it == loads.end()) return;
    const Load load = it->second;
    loads.erase(it);
    const bool ok = body.value("ok", false);
    const std::string error = body.value("error", "");
    if (load.catch_up) {
      if (!ok) {
        std::fprintf(stderr, "sluice serve: a restarted serving worker cannot load %s: %s\n",
                     load.slot.c_str(), error.c_str());
      }
      if (w->catching_up > 0 && --w->catching_up == 0) w->ready = true;
      return;
    }
    auto slot = slots.find(load.slot);
    if (slot == slots.end()) return;
    if (!ok && slot->second.error.empty()) slot->second.error = error;
    slot->second.waiting.erase(load.worker);
    if (slot->second.waiting.empty()) FinishLoad(slot->first);
  }

  void FinishLoad(const std::string& name) {
    Slot& slot = slots[name];
    std::vector<std::function<void(const std::string&)>> waiters;
    waiters.swap(slot.waiters);
    std::string error = slot.error;
    size_t live = 0;
    for (const auto& w : workers) live += w && !w->dead ? 1 : 0;
    if (error.empty() && live == 0) error = "no serving worker is running";
    if (error.empty()) {
      slot.ready = true;
      slot.loaded_at = NowIso();
    } else {
      for (const auto& w : workers) {
        if (w) Send(w, Type::kUnloadModel, json{{"slot", name}}.dump());
      }
      slots.erase(name);
      if (metrics != nullptr) metrics->Add("sluice_model_load_failures_total", {});
    }
    for (auto& waiter : waiters) waiter(error);
  }

  void HandleDeath(const std::shared_ptr<ServingWorker>& w, const std::string& how) {
    if (w->dead) return;
    w->dead = true;
    w->ready = false;
    boost::system::error_code ignored;
    w->socket.close(ignored);
    w->output.close(ignored);
    kill(-w->pid, SIGKILL);
    int status = 0;
    waitpid(w->pid, &status, 0);
    if (!shutting_down) {
      std::fprintf(stderr, "sluice serve: serving worker %d %s; starting another\n",
                   static_cast<int>(w->pid), how.c_str());
    }
    for (auto it = requests.begin(); it != requests.end();) {
      if (it->second.worker != w->index) {
        ++it;
        continue;
      }
      Reply reply = std::move(it->second.reply);
      it = requests.erase(it);
      reply(503, ErrorBody("worker_crashed",
                           "the serving worker died while answering (a predictor bug?); retry"));
    }
    for (auto it = loads.begin(); it != loads.end();) {
      it = it->second.worker == w->index ? loads.erase(it) : std::next(it);
    }
    std::vector<std::string> finished;
    for (auto& [name, slot] : slots) {
      if (!slot.ready && slot.waiting.erase(w->index) > 0 && slot.waiting.empty()) {
        finished.push_back(name);
      }
    }
    for (const std::string& name : finished) FinishLoad(name);
    if (shutting_down) return;
    auto self = shared_from_this();
    auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(200));
    const size_t index = w->index;
    timer->async_wait([self, timer, index](boost::system::error_code ec) {
      if (!ec && !self->shutting_down) self->Spawn(index);
    });
  }

  // Loads `model` v`version` in every worker; `done` gets "" or why it failed.
  void LoadSlot(const std::string& model, int version,
                std::function<void(const std::string&)> done) {
    const std::string name = SlotName(model, version);
    auto it = slots.find(name);
    if (it != slots.end()) {
      if (it->second.ready) return done("");
      it->second.waiters.push_back(std::move(done));
      return;
    }
    ModelRegistry registry(store);
    StatusOr<ModelVersion> v = registry.GetVersion(model, version);
    if (!v.ok()) return done(v.status().message());
    Slot slot;
    slot.model = model;
    slot.version = version;
    const ArtifactStore artifacts(ArtifactStore::RootFor(state_dir));
    slot.dir = artifacts.PathOf(v->artifact, "dir").string();
    json card;
    try {
      std::ifstream in(slot.dir + "/sluice-model.json");
      if (!in) {
        return done(model + " v" + std::to_string(version) + " (artifact " +
                    v->artifact.substr(0, 12) +
                    ") has no sluice-model.json: it is not a model folder a predictor can serve");
      }
      card = json::parse(in);
    } catch (const json::exception& e) {
      return done(slot.dir + "/sluice-model.json is not valid JSON: " + e.what());
    }
    slot.predictor = card.value("predictor", "");
    const PluginManifest* plugin = catalog->FindPluginOfPredictor(slot.predictor);
    if (plugin == nullptr) {
      return done(model + " v" + std::to_string(version) + " needs predictor \"" + slot.predictor +
                  "\", which no installed plugin offers");
    }
    slot.file = plugin->file;
    slot.waiters.push_back(std::move(done));
    Slot& stored = slots[name] = std::move(slot);
    for (const auto& w : workers) {
      if (!w || w->dead) continue;
      stored.waiting.insert(w->index);
      SendLoad(w, name, stored, false);
    }
    if (stored.waiting.empty()) FinishLoad(name);
  }

  void Predict(const std::string& model, const std::string& alias, int version, std::string body,
               Reply reply) {
    EnsureStarted();
    auto self = shared_from_this();
    const auto started_at = std::chrono::steady_clock::now();
    if (version > 0) {
      const std::string name = SlotName(model, version);
      if (!slots.count(name)) {
        // An unknown model or version is the caller's mistake (404); a version that exists
        // but cannot be loaded is ours to report (503, from LoadSlot).
        StatusOr<ModelVersion> known = ModelRegistry(store).GetVersion(model, version);
        if (!known.ok()) return reply(404, ErrorBody("not_found", known.status().message()));
      }
      pinned.insert(name);
      LoadSlot(model, version,
               [self, name, model, body = std::move(body), reply = std::move(reply),
                started_at](const std::string& error) mutable {
                 if (!error.empty()) {
                   self->pinned.erase(name);
                   return reply(503, ErrorBody("model_unavailable", error));
                 }
                 self->Dispatch(name, model, body, std::move(reply), started_at);
               });
      return;
    }
    Route& route = routes[model + "\n" + alias];
    route.model = model;
    route.alias = alias;
    if (!route.current.empty()) {
      return Dispatch(route.current, model, body, std::move(reply), started_at);
    }
    ModelRegistry registry(store);
    StatusOr<ModelVersion> v = registry.Resolve(model, alias);
    if (!v.ok()) {
      routes.erase(model + "\n" + alias);
      return reply(404, ErrorBody("not_found", v.status().message()));
    }
    const std::string key = model + "\n" + alias;
    LoadSlot(model, v->version,
             [self, key, model, name = SlotName(model, v->version), version = v->version,
              body = std::move(body), reply = std::move(reply),
              started_at](const std::string& error) mutable {
               auto r = self->routes.find(key);
               if (!error.empty()) {
                 if (r != self->routes.end() && r->second.current.empty()) {
                   r->second.failed_version = version;
                   r->second.failed_error = error;
                   r->second.failed_at = NowIso();
                 }
                 return reply(503, ErrorBody("model_unavailable", error));
               }
               std::string serve = name;
               if (r != self->routes.end()) {
                 if (r->second.current.empty()) {
                   r->second.current = name;
                   r->second.since = NowIso();
                 }
                 serve = r->second.current;
               }
               self->Dispatch(serve, model, body, std::move(reply), started_at);
             });
  }

  void Dispatch(const std::string& slot, const std::string& model, const std::string& body,
                Reply reply, std::chrono::steady_clock::time_point started_at) {
    std::shared_ptr<ServingWorker> best;
    for (const auto& w : workers) {
      if (w && w->ready && !w->dead && (!best || w->in_flight < best->in_flight)) best = w;
    }
    if (!best) {
      return reply(503, ErrorBody("unavailable", "no serving worker is ready yet; retry"));
    }
    const int64_t id = next_id++;
    requests[id] = {std::move(reply), best->index, model, started_at};
    ++best->in_flight;
    std::string payload = std::to_string(id) + " " + slot + "\n";
    payload += body;
    Send(best, Type::kPredict, payload);
  }

  void OnPredicted(const std::shared_ptr<ServingWorker>& w, const std::string& payload) {
    const size_t space = payload.find(' ');
    const size_t newline = payload.find('\n');
    if (space == std::string::npos || newline == std::string::npos) return;
    const int64_t id = std::strtoll(payload.c_str(), nullptr, 10);
    const int code = std::atoi(payload.c_str() + space + 1);
    auto it = requests.find(id);
    if (it == requests.end()) return;
    Request request = std::move(it->second);
    requests.erase(it);
    if (w->in_flight > 0) --w->in_flight;
    std::string text = payload.substr(newline + 1);
    int status = 200;
    if (code == SLUICE_PREDICT_BAD_REQUEST) {
      status = 400;
      text = ErrorBody("bad_request", text);
    } else if (code != SLUICE_PREDICT_OK) {
      status = 500;
      text = ErrorBody("predict_failed", text);
    }
    if (metrics != nullptr) {
      metrics->Add("sluice_predictions_total",
                   {{"model", request.model}, {"status", std::to_string(status)}});
      metrics->Observe(
          "sluice_prediction_duration_seconds", {{"model", request.model}},
          std::chrono::duration<double>(std::chrono::steady_clock::now() - request.started)
              .count());
    }
    request.reply(status, std::move(text));
  }

  void ArmWatch() {
    auto self = shared_from_this();
    watch_timer.expires_after(options.watch_interval);
    watch_timer.async_wait([self](boost::system::error_code ec) {
      if (ec || self->shutting_down) return;
      self->Watch();
      self->ArmWatch();
    });
  }

  // Moves every served alias that the registry has moved, once its new version is loaded;
  // and restarts workers that sit on a request past its deadline.
  void Watch() {
    const auto now = std::chrono::steady_clock::now();
    std::set<size_t> hung;
    for (auto it = requests.begin(); it != requests.end();) {
      if (now - it->second.started < options.request_timeout) {
        ++it;
        continue;
      }
      hung.insert(it->second.worker);
      Reply reply = std::move(it->second.reply);
      const std::string model = it->second.model;
      it = requests.erase(it);
      if (metrics != nullptr) {
        metrics->Add("sluice_predictions_total", {{"model", model}, {"status", "504"}});
      }
      reply(504, ErrorBody("timeout", "the predictor did not answer within " +
                                          std::to_string(options.request_timeout.count()) +
                                          " ms; its serving worker is being restarted"));
    }
    for (size_t index : hung) {
      if (index < workers.size() && workers[index] && !workers[index]->dead) {
        HandleDeath(workers[index], "did not answer a request in time (killed)");
      }
    }
    ModelRegistry registry(store);
    for (auto& [key, route] : routes) {
      if (route.current.empty() || route.loading != 0) continue;
      StatusOr<ModelVersion> v = registry.Resolve(route.model, route.alias);
      if (!v.ok()) continue;  // the alias was removed: keep serving what we have
      const int serving = slots.count(route.current) ? slots[route.current].version : 0;
      if (v->version == serving || v->version == route.failed_version) continue;
      route.loading = v->version;
      auto self = shared_from_this();
      const std::string route_key = key;
      LoadSlot(route.model, v->version,
               [self, route_key, version = v->version](const std::string& error) {
                 auto r = self->routes.find(route_key);
                 if (r == self->routes.end()) return;
                 Route& moved = r->second;
                 moved.loading = 0;
                 if (!error.empty()) {
                   moved.failed_version = version;
                   moved.failed_error = error;
                   moved.failed_at = NowIso();
                   std::fprintf(stderr,
                                "sluice serve: %s's %s moved to v%d, which cannot be served; "
                                "%s keeps serving: %s\n",
                                moved.model.c_str(), moved.alias.c_str(), version,
                                moved.current.c_str(), error.c_str());
                   return;
                 }
                 const std::string old = moved.current;
                 moved.current = SlotName(moved.model, version);
                 moved.since = NowIso();
                 moved.failed_version = 0;
                 moved.failed_error.clear();
                 if (self->metrics != nullptr) {
                   self->metrics->Add("sluice_model_swaps_total", {{"model", moved.model}});
                 }
                 std::printf("sluice serve: %s %s is now v%d (was %s)\n", moved.model.c_str(),
                             moved.alias.c_str(), version, old.c_str());
                 std::fflush(stdout);
                 self->MaybeUnload(old);
               });
    }
  }

  void MaybeUnload(const std::string& name) {
    if (pinned.count(name)) return;
    for (const auto& [key, route] : routes) {
      if (route.current == name) return;
    }
    slots.erase(name);
    for (const auto& w : workers) {
      if (w) Send(w, Type::kUnloadModel, json{{"slot", name}}.dump());
    }
  }

  json Status(const std::string& model) const {
    json aliases = json::object();
    for (const auto& [key, route] : routes) {
      if (route.model != model) continue;
      json a = {{"version", nullptr}};
      auto slot = slots.find(route.current);
      if (slot != slots.end()) {
        a["version"] = slot->second.version;
        a["since"] = route.since;
      }
      if (route.loading != 0) a["loading"] = route.loading;
      if (route.failed_version != 0) {
        a["failed"] = {{"version", route.failed_version},
                       {"error", route.failed_error},
                       {"at", route.failed_at}};
      }
      aliases[route.alias] = a;
    }
    json versions = json::array();
    for (const auto& [name, slot] : slots) {
      if (slot.model == model && slot.ready) versions.push_back(slot.version);
    }
    size_t running = 0;
    size_t ready = 0;
    for (const auto& w : workers) {
      running += w && !w->dead ? 1 : 0;
      ready += w && w->ready && !w->dead ? 1 : 0;
    }
    return {{"model", model},
            {"aliases", aliases},
            {"versions", versions},
            {"workers", {{"running", running}, {"ready", ready}}}};
  }

  void Shutdown() {
    if (shutting_down) return;
    shutting_down = true;
    watch_timer.cancel();
    for (const auto& w : workers) {
      if (w && !w->dead) {
        const std::string frame = protocol::EncodeFrame(Type::kShutdown, "{}");
        boost::system::error_code ignored;
        asio::write(w->socket, asio::buffer(frame), ignored);
      }
    }
    for (const auto& w : workers) {
      if (!w || w->dead) continue;
      int status = 0;
      bool exited = false;
      for (int i = 0; i < 100 && !exited; ++i) {
        exited = waitpid(w->pid, &status, WNOHANG) == w->pid;
        if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (!exited) {
        kill(-w->pid, SIGKILL);
        waitpid(w->pid, &status, 0);
      }
      w->dead = true;
      boost::system::error_code ignored;
      w->socket.close(ignored);
      w->output.close(ignored);
    }
    for (auto& [id, request] : requests) {
      request.reply(503, ErrorBody("unavailable", "the daemon is shutting down"));
    }
    requests.clear();
  }
};

ModelServer::ModelServer(asio::io_context& io, StateStore* store, const PluginCatalog* catalog,
                         std::string state_dir, Metrics* metrics, Options options)
    : impl_(std::make_shared<Impl>(io, store, catalog, std::move(state_dir), metrics,
                                   std::move(options))) {
  if (metrics != nullptr) {
    metrics->Declare("sluice_predictions_total", "counter",
                     "Prediction requests answered, by model and HTTP status");
    metrics->Declare("sluice_prediction_duration_seconds", "histogram",
                     "Prediction latency in the daemon, by model", Metrics::DurationBuckets());
    metrics->Declare("sluice_model_swaps_total", "counter",
                     "Served aliases switched to a newly loaded version, by model");
    metrics->Declare("sluice_model_load_failures_total", "counter",
                     "Model versions that could not be loaded for serving");
  }
}

ModelServer::~ModelServer() { impl_->Shutdown(); }

void ModelServer::Predict(const std::string& model, const std::string& alias, int version,
                          std::string body, Reply reply) {
  impl_->Predict(model, alias, version, std::move(body), std::move(reply));
}

json ModelServer::Status(const std::string& model) const { return impl_->Status(model); }

void ModelServer::Shutdown() { impl_->Shutdown(); }

}  // namespace sluice
