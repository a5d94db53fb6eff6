// The worker process: `sluice worker --fd N`. It loads plugins and runs one step at a time
// for the engine on the other end of socket N. See worker.h.
#include "sluice/worker.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "sluice/artifacts.h"
#include "sluice/duration.h"
#include "sluice/json_limits.h"
#include "sluice/plugin_abi.h"
#include "sluice/plugin_host.h"
#include "sluice/worker_protocol.h"

namespace sluice {
namespace {

// A frame's JSON text. Strings a plugin gave (metric and output names, manifest text, error
// messages) may hold bytes that are not UTF-8, which nlohmann's dump throws on: they are sent
// with U+FFFD in their place instead of killing the worker.
std::string Frame(const nlohmann::json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

using nlohmann::json;
using protocol::Type;

class Connection {
 public:
  explicit Connection(int fd) : fd_(fd) {}

  // Sends one frame; false when the engine is gone. Thread-safe.
  bool Send(Type type, const std::string& payload) {
    const std::string frame = protocol::EncodeFrame(type, payload);
    std::lock_guard<std::mutex> lock(write_mutex_);
    size_t done = 0;
    while (done < frame.size()) {
      ssize_t n = ::send(fd_, frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  // Blocks for the next frame; false at end of stream or on error.
  bool Receive(Type* type, std::string* payload) {
    char buf[65536];
    while (!decoder_.Next(type, payload)) {
      if (decoder_.corrupt()) return false;
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      decoder_.Append(buf, static_cast<size_t>(n));
    }
    return true;
  }

 private:
  int fd_;
  std::mutex write_mutex_;
  protocol::FrameDecoder decoder_;
};

struct Job {
  Type type;
  json body;
};

// Lowers the worker's soft limits for one try and puts them back after it. Only soft limits
// move, so they can always be restored (a process may raise a soft limit up to its hard one).
class TryLimits {
 public:
  explicit TryLimits(const json& limits) {
    if (limits.contains("memory_bytes")) Lower(RLIMIT_AS, limits["memory_bytes"].get<uint64_t>());
    if (limits.contains("cpu_seconds")) {
      // RLIMIT_CPU counts the process's whole life: the try gets its share on top of what
      // the worker has used so far.
      rusage usage{};
      getrusage(RUSAGE_SELF, &usage);
      const uint64_t used =
          static_cast<uint64_t>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + 1;
      Lower(RLIMIT_CPU, used + limits["cpu_seconds"].get<uint64_t>());
    }
    if (limits.contains("open_files")) Lower(RLIMIT_NOFILE, limits["open_files"].get<uint64_t>());
  }
  ~TryLimits() {
    for (const auto& [resource, previous] : saved_) setrlimit(resource, &previous);
  }
  TryLimits(const TryLimits&) = delete;
  TryLimits& operator=(const TryLimits&) = delete;

 private:
  void Lower(__rlimit_resource resource, uint64_t value) {
    rlimit current{};
    if (getrlimit(resource, &current) != 0) return;
    saved_.emplace_back(resource, current);
    rlimit lowered = current;
    lowered.rlim_cur = std::min<rlim_t>(static_cast<rlim_t>(value), current.rlim_max);
    setrlimit(resource, &lowered);
  }
  std::vector<std::pair<__rlimit_resource, rlimit>> saved_;
};

// Replies to calls a step made, handed from the reader thread to the step's thread.
struct PendingCalls {
  std::mutex mutex;
  std::condition_variable cv;
  std::map<int64_t, json> replies;  // id -> reply frame body
  int64_t next_id = 1;
};

// Sends what a step reports to the engine as frames.
class RemoteStepHost : public StepHost {
 public:
  RemoteStepHost(Connection* conn, const std::atomic<bool>* cancelled,
                 std::filesystem::path output_dir, std::filesystem::path scratch_dir,
                 const ArtifactStore* artifacts, PendingCalls* calls)
      : conn_(conn),
        cancelled_(cancelled),
        output_dir_(std::move(output_dir)),
        scratch_dir_(std::move(scratch_dir)),
        artifacts_(artifacts),
        calls_(calls) {}

  void Log(int level, std::string_view message) override {
    // One frame per line keeps each log record a line in the task log.
    size_t start = 0;
    while (start <= message.size()) {
      size_t nl = message.find('\n', start);
      std::string_view line =
          message.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
      if (!(line.empty() && nl == std::string_view::npos && start > 0)) {
        conn_->Send(Type::kLog, json{{"level", level}, {"text", std::string(line)}}.dump(
                                    -1, ' ', false, json::error_handler_t::replace));
      }
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
  }
  void Metric(const std::string& name, double value, int64_t step) override {
    if (name.empty()) {
      Log(SLUICE_LOG_WARNING, "a metric without a name was ignored");
      return;
    }
    conn_->Send(Type::kMetric, Frame(json{{"name", name}, {"value", value}, {"step", step}}));
  }
  bool Cancelled() override { return cancelled_->load(); }
  bool Call(const std::string& method, const std::string& request, std::string* response) override {
    StatusOr<json> parsed = ParseJson(request, "the request");
    if (!parsed.ok()) {
      *response = "call " + method + ": " + parsed.status().message();
      return false;
    }
    json body = std::move(parsed).value();
    int64_t id = 0;
    {
      std::lock_guard<std::mutex> lock(calls_->mutex);
      id = calls_->next_id++;
    }
    if (!conn_->Send(Type::kCall,
                     json{{"id", id}, {"method", method}, {"request", std::move(body)}}.dump(
                         -1, ' ', false, json::error_handler_t::replace))) {
      *response = "call " + method + ": the engine is gone";
      return false;
    }
    // The engine answers every call; if it dies, the reader thread takes this process down.
    std::unique_lock<std::mutex> lock(calls_->mutex);
    calls_->cv.wait(lock, [&] { return calls_->replies.count(id) > 0; });
    json reply = std::move(calls_->replies[id]);
    calls_->replies.erase(id);
    const bool ok = reply.value("ok", false);
    *response = ok ? reply.value("result", json()).dump() : reply.value("error", "call failed");
    return ok;
  }
  bool Output(const std::string& name, int kind, const std::string& data) override {
    if (name.empty() || name.find('/') != std::string::npos) {
      Log(SLUICE_LOG_ERROR,
          "output name \"" + name + "\" is not valid (it must be non-empty, without '/')");
      return false;
    }
    json message = {{"name", name}};
    if (kind == SLUICE_OUTPUT_VALUE) {
      StatusOr<json> value = ParseJson(data, "output \"" + name + "\"");
      if (!value.ok()) {
        Log(SLUICE_LOG_ERROR, value.status().message().substr(0, 400));
        return false;
      }
      try {
        message["kind"] = "value";
        message["value"] = std::move(value).value();
        message["artifact"] = ValueArtifactId(message["value"]);
        message["size"] = data.size();
      } catch (const json::exception&) {
        Log(SLUICE_LOG_ERROR, "output \"" + name + "\" is not valid JSON: " + data.substr(0, 200));
        return false;
      }
    } else if (kind == SLUICE_OUTPUT_FILE || kind == SLUICE_OUTPUT_DIR) {
      std::error_code ec;
      std::filesystem::path path = std::filesystem::absolute(data, ec);
      const bool is_dir = std::filesystem::is_directory(path, ec);
      const bool exists = std::filesystem::exists(path, ec);
      if (!exists || (kind == SLUICE_OUTPUT_FILE && is_dir) ||
          (kind == SLUICE_OUTPUT_DIR && !is_dir)) {
        Log(SLUICE_LOG_ERROR,
            "output \"" + name + "\": " + path.string() +
                (exists ? (is_dir ? " is a directory, not a file" : " is not a directory")
                        : " does not exist"));
        return false;
      }
      message["kind"] = kind == SLUICE_OUTPUT_FILE ? "file" : "dir";
      const bool inside = IsUnder(path, output_dir_);
      if (artifacts_ != nullptr) {
        // Into the content-addressed store: what the step wrote in its output or scratch dir
        // is moved (both are removed after the try), anything else is copied. The same path
        // declared twice is stored once.
        auto known = stored_.find(path.string());
        if (known == stored_.end()) {
          StatusOr<StoredObject> object =
              artifacts_->Put(path, kind == SLUICE_OUTPUT_DIR,
                              /*move=*/inside || IsUnder(path, scratch_dir_));
          if (!object.ok()) {
            Log(SLUICE_LOG_ERROR, "output \"" + name + "\": " + object.status().message());
            return false;
          }
          known = stored_.emplace(path.string(), *std::move(object)).first;
        }
        const StoredObject& object = known->second;
        message["path"] = object.path.string();
        message["artifact"] = object.id;
        message["size"] = object.size;
        if (object.kind == "dir") message["files"] = object.files;
        return conn_->Send(Type::kOutput, Frame(message));
      }
      // No artifact store (a launch that does not name one): outputs outlive the try and the
      // scratch dir does not, so anything outside the output dir is copied in.
      if (!inside) {
        std::filesystem::path dest = output_dir_ / name / path.filename();
        std::filesystem::create_directories(dest.parent_path(), ec);
        std::filesystem::copy(path, dest,
                              std::filesystem::copy_options::recursive |
                                  std::filesystem::copy_options::overwrite_existing,
                              ec);
        if (ec) {
          Log(SLUICE_LOG_ERROR,
              "output \"" + name + "\": cannot keep " + path.string() + ": " + ec.message());
          return false;
        }
        path = dest;
      }
      message["path"] = path.string();
    } else {
      Log(SLUICE_LOG_ERROR, "output \"" + name + "\" has unknown kind " + std::to_string(kind));
      return false;
    }
    return conn_->Send(Type::kOutput, Frame(message));
  }

 private:
  Connection* conn_;
  const std::atomic<bool>* cancelled_;
  static bool IsUnder(const std::filesystem::path& path, const std::filesystem::path& dir) {
    if (dir.empty()) return false;
    std::error_code ec;
    const std::string rel = std::filesystem::relative(path, dir, ec).string();
    return !ec && !rel.empty() && rel.rfind("..", 0) != 0;
  }

  std::filesystem::path output_dir_;
  std::filesystem::path scratch_dir_;
  const ArtifactStore* artifacts_;
  PendingCalls* calls_;
  std::map<std::string, StoredObject> stored_;  // source path -> object
};

}  // namespace

int RunWorker(int fd) {
  Connection conn(fd);
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<Job> jobs;
  bool stop = false;
  std::string current;                  // key of the try running now; guarded by mutex
  std::set<std::string> cancel_queued;  // keys cancelled before they started; guarded by mutex
  std::atomic<bool> cancelled{false};
  std::atomic<bool> busy{false};
  PendingCalls calls;

  if (!conn.Send(Type::kHello, json{{"pid", ::getpid()}}.dump())) return 1;

  // Reader: takes jobs, cancellations and shutdown while the main thread runs a step.
  std::thread reader([&] {
    Type type;
    std::string payload;
    while (conn.Receive(&type, &payload)) {
      StatusOr<json> parsed = ParseJson(payload, "a frame", kFrameJsonLimits);
      if (!parsed.ok()) continue;  // a frame we cannot read cannot be answered either
      json body = std::move(parsed).value();
      if (type == Type::kReply) {
        const int64_t id = body.is_object() ? body.value("id", int64_t{0}) : 0;
        std::lock_guard<std::mutex> lock(calls.mutex);
        calls.replies[id] = std::move(body);
        calls.cv.notify_all();
        continue;
      }
      std::lock_guard<std::mutex> lock(mutex);
      if (type == Type::kCancel) {
        const std::string key = body.value("key", "");
        if (key == current)
          cancelled = true;
        else
          cancel_queued.insert(key);
        continue;
      }
      if (type == Type::kShutdown) {
        stop = true;
        cv.notify_all();
        return;
      }
      if (type == Type::kRevoke) {
        // Under the lock the main thread takes jobs with: a try is either still queued (and
        // is given back) or has been taken (and runs here).
        const std::string key = body.value("key", "");
        auto it = std::find_if(jobs.begin(), jobs.end(), [&](const Job& j) {
          return j.type == Type::kRun && j.body.value("key", "") == key;
        });
        const bool revoked = it != jobs.end();
        if (revoked) jobs.erase(it);
        conn.Send(Type::kRevoked, json{{"key", key}, {"revoked", revoked}}.dump());
        continue;
      }
      jobs.push_back({type, std::move(body)});
      cv.notify_all();
    }
    // The engine is gone (it crashed or was killed): take this worker's process group,
    // including any command a step started, down with it rather than leave orphans.
    ::kill(-::getpgrp(), SIGKILL);
    _exit(1);
  });
  reader.detach();

  // Heartbeat while a step runs, so that the engine can tell a stopped worker from a slow step.
  std::thread heartbeat([&] {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      if (busy && !conn.Send(Type::kHeartbeat, "{}")) return;
    }
  });
  heartbeat.detach();

  std::map<std::string, std::unique_ptr<PluginLibrary>> libraries;  // kept loaded
  for (;;) {
    Job job;
    bool skip = false;
    {
      std::unique_lock<std::mutex> lock(mutex);
      cv.wait(lock, [&] { return stop || !jobs.empty(); });
      if (stop && jobs.empty()) return 0;
      job = std::move(jobs.front());
      jobs.pop_front();
      if (job.type == Type::kRun) {
        const std::string key = job.body.value("key", "");
        skip = cancel_queued.erase(key) > 0;
        if (!skip) {
          current = key;
          cancelled = false;
        }
      }
    }
    if (job.type == Type::kScan) {
      std::vector<std::string> dirs = job.body.value("dirs", std::vector<std::string>{});
      std::vector<std::string> exclude = job.body.value("exclude", std::vector<std::string>{});
      PluginCatalog catalog = ScanPlugins(dirs, [&](const std::string& file) {
        if (std::find(exclude.begin(), exclude.end(), file) != exclude.end()) return false;
        conn.Send(Type::kScanning, json{{"file", file}}.dump());
        return true;
      });
      conn.Send(Type::kCatalog, Frame(catalog.ToJson()));
      continue;
    }
    if (job.type != Type::kRun) continue;
    const std::string key = job.body.value("key", "");
    if (skip) {
      conn.Send(Type::kResult, json{{"key", key},
                                    {"code", SLUICE_RESULT_FAILED},
                                    {"message", "cancelled before it started"},
                                    {"started", false}}
                                   .dump());
      continue;
    }

    busy = true;
    const std::string file = job.body.value("file", "");
    const std::string step = job.body.value("step", "");
    json request = job.body.value("request", json::object());
    const std::filesystem::path scratch = request.value("scratch_dir", "");
    const std::filesystem::path output_dir = request.value("output_dir", "");
    const std::string artifact_root = job.body.value("artifacts", "");
    std::optional<ArtifactStore> artifacts;
    if (!artifact_root.empty()) artifacts.emplace(artifact_root);

    StepResult result;
    auto it = libraries.find(file);
    if (it == libraries.end()) {
      StatusOr<std::unique_ptr<PluginLibrary>> lib = PluginLibrary::Load(file);
      if (lib.ok())
        it = libraries.emplace(file, std::move(*lib)).first;
      else
        result = {SLUICE_RESULT_FAILED, "cannot load plugin: " + lib.status().message()};
    }
    if (it != libraries.end()) {
      RemoteStepHost host(&conn, &cancelled, output_dir, scratch, artifacts ? &*artifacts : nullptr,
                          &calls);
      const std::string request_text = request.dump();
      const json limits = job.body.value("limits", json::object());
      {
        TryLimits applied(limits);
        result = it->second->Run(step, request_text, &host);
      }
      if (result.code == SLUICE_RESULT_FAILED && limits.contains("memory_bytes") &&
          result.message.find("bad_alloc") != std::string::npos) {
        result.message += " (the task's memory limit of " +
                          FormatSize(limits["memory_bytes"].get<uint64_t>()) + " was reached)";
      }
    }
    // The try's folder holds the scratch and output dirs, which exist only if the step asked
    // for them: when it asked for neither, the folder is not there, and one syscall says so.
    const bool shared_parent = !scratch.empty() && !output_dir.empty() &&
                               output_dir.parent_path() == scratch.parent_path();
    const bool nothing_made =
        shared_parent && ::rmdir(scratch.parent_path().c_str()) != 0 && errno == ENOENT;
    if (!nothing_made && !scratch.empty() && ::rmdir(scratch.c_str()) != 0 && errno != ENOENT) {
      std::error_code ec;
      std::filesystem::remove_all(scratch, ec);
    }
    // With an artifact store, the outputs are in it: what is left in the output dir was not
    // declared, and nothing refers to it.
    if (!nothing_made && artifacts && !output_dir.empty()) {
      if (::rmdir(output_dir.c_str()) != 0 && errno != ENOENT) {
        std::error_code ec;
        std::filesystem::remove_all(output_dir, ec);
      }
      // The try's own folder, when it holds nothing else.
      if (shared_parent) ::rmdir(scratch.parent_path().c_str());
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      current.clear();
    }
    busy = false;
    // Anything the step printed with printf/std::cout goes to the task log through the
    // stdout pipe; flush it before the result so that it lands in this try's log.
    std::fflush(stdout);
    std::fflush(stderr);
    conn.Send(
        Type::kResult,
        json{{"key", key}, {"code", result.code}, {"message", result.message}, {"started", true}}
            .dump(-1, ' ', false, json::error_handler_t::replace));
  }
}

}  // namespace sluice

namespace sluice {

int RunServingWorker(int fd) {
  Connection conn(fd);
  // Libraries stay loaded for the process's life: a model must not outlive its library,
  // and reloading one per model version would only cost time.
  std::map<std::string, std::unique_ptr<PluginLibrary>> libraries;
  struct Slot {
    std::unique_ptr<PluginLibrary::LoadedModel> model;
    std::string prefix;  // `{"model":"x","version":3,` spliced in front of the answer
  };
  std::map<std::string, Slot> slots;
  if (!conn.Send(Type::kHello, json{{"pid", ::getpid()}}.dump())) return 1;

  Type type;
  std::string payload;
  std::string response;
  while (conn.Receive(&type, &payload)) {
    if (type == Type::kPredict) {
      // "<id> <slot>\n<body>"
      const size_t space = payload.find(' ');
      const size_t newline = payload.find('\n');
      if (space == std::string::npos || newline == std::string::npos || newline < space) continue;
      const std::string id = payload.substr(0, space);
      auto it = slots.find(payload.substr(space + 1, newline - space - 1));
      int code = SLUICE_PREDICT_FAILED;
      if (it == slots.end()) {
        response = "the model is not loaded in this serving worker";
      } else {
        code = it->second.model->Predict(payload.substr(newline + 1), &response);
        if (code == SLUICE_PREDICT_OK && response.size() > 1 && response[0] == '{') {
          response.replace(0, 1, it->second.prefix);
        }
      }
      if (!conn.Send(Type::kPredicted, id + " " + std::to_string(code) + "\n" + response)) return 1;
      continue;
    }
    StatusOr<json> parsed = ParseJson(payload, "a frame", kFrameJsonLimits);
    if (!parsed.ok()) continue;
    json body = std::move(parsed).value();
    if (type == Type::kShutdown) return 0;
    if (type == Type::kUnloadModel) {
      slots.erase(body.value("slot", ""));
      continue;
    }
    if (type != Type::kLoadModel) continue;
    const auto started = std::chrono::steady_clock::now();
    json reply = {{"id", body.value("id", 0)}, {"ok", false}};
    const std::string file = body.value("file", "");
    auto lib = libraries.find(file);
    if (lib == libraries.end()) {
      StatusOr<std::unique_ptr<PluginLibrary>> loaded = PluginLibrary::Load(file);
      if (!loaded.ok()) {
        reply["error"] = loaded.status().message();
        if (!conn.Send(Type::kLoaded, Frame(reply))) return 1;
        continue;
      }
      lib = libraries.emplace(file, std::move(*loaded)).first;
    }
    StatusOr<std::unique_ptr<PluginLibrary::LoadedModel>> model =
        lib->second->LoadModel(body.value("predictor", ""), body.value("dir", ""));
    if (!model.ok()) {
      reply["error"] = model.status().message();
    } else {
      std::string prefix =
          json{{"model", body.value("model", "")}, {"version", body.value("version", 0)}}.dump();
      prefix.back() = ',';
      slots[body.value("slot", "")] = {std::move(*model), std::move(prefix)};
      reply["ok"] = true;
    }
    reply["seconds"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (!conn.Send(Type::kLoaded, Frame(reply))) return 1;
  }
  return 0;
}

}  // namespace sluice
