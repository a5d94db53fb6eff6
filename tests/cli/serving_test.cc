// Model serving end to end: models trained and registered by the real ML pipeline, a real
// daemon, real serving worker processes, real HTTP. Checks answers, bad requests, and that
// moving the production alias under load fails no request (and that a version that cannot
// load leaves the previous one serving).
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "test_util.h"

namespace sluice {
namespace {

using nlohmann::json;
using testing::HttpCall;
using testing::RunSluice;

// A model folder that claims to be XGBoost's but holds no model: registered as v3, it
// cannot be loaded for serving.
constexpr const char* kBrokenDag = R"(
[dag]
id = "broken"
[[task]]
id = "make"
plugin = "core.shell"
params = { command = "mkdir m && echo '{\"format\":\"xgboost\",\"predictor\":\"train.xgboost\"}' > m/sluice-model.json && echo garbage > m/preprocess.json", outputs = { model = "m" } }
[[task]]
id = "score"
plugin = "core.noop"
params = { outputs = { metrics = { auc = 0.5 } } }
[[task]]
id = "deploy"
plugin = "deploy.promote"
inputs = { model = "make.model", metrics = "score.metrics" }
params = { model = "breast_cancer", gates = ["auc > 0.9"] }
)";

// The first rows of the data set, as a predict request without the label.
json Rows(size_t n) {
  std::ifstream in(testing::SourcePath("examples/data/breast_cancer_wisconsin.csv"));
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();  // the file has CRLF line ends
  std::vector<std::string> header;
  std::stringstream h(line);
  for (std::string cell; std::getline(h, cell, ',');) header.push_back(cell);
  json rows = json::array();
  while (rows.size() < n && std::getline(in, line)) {
    std::stringstream cells(line);
    json row = json::object();
    size_t i = 0;
    for (std::string cell; std::getline(cells, cell, ','); ++i) {
      if (header[i] != "diagnosis") row[header[i]] = std::stod(cell);
    }
    rows.push_back(row);
  }
  return rows;
}

std::string Message(const testing::HttpReply& reply) {
  const json body = json::parse(reply.body, nullptr, false);
  return body.is_object() && body.contains("error") ? body["error"].value("message", "") : "";
}

// A `sluice serve` that is stopped however the test ends (a failed REQUIRE included); its
// serving workers exit when it is gone.
class ServingDaemon {
 public:
  ServingDaemon(const std::vector<std::string>& args, const std::string& log)
      : pid_(testing::SpawnSluice(args, log)) {}
  ~ServingDaemon() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  ServingDaemon(const ServingDaemon&) = delete;
  ServingDaemon& operator=(const ServingDaemon&) = delete;
  // SIGTERM; true when it exited on its own.
  bool Stop() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status);
  }
  int pid() const { return pid_; }

 private:
  int pid_;
};

// Stops and joins client threads however the test ends.
// `clients` threads sending the same predict request until Stop(): how many were answered,
// the versions that answered, and the first failure.
class PredictLoad {
 public:
  PredictLoad(unsigned short port, const std::string& path, const std::string& body,
              int clients = 4) {
    for (int c = 0; c < clients; ++c) {
      threads_.emplace_back([this, port, path, body] {
        while (!stop_) {
          testing::HttpReply reply = testing::HttpCall(port, "POST", path, "", body);
          std::lock_guard<std::mutex> lock(mutex_);
          if (reply.status != 200) {
            if (failures++ == 0) first_failure = std::to_string(reply.status) + " " + reply.body;
            continue;
          }
          ++answered;
          seen.insert(nlohmann::json::parse(reply.body)["version"].get<int>());
        }
      });
    }
  }
  ~PredictLoad() { Stop(); }
  // Joins the clients; the figures below are final after it.
  void Stop() {
    stop_ = true;
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  std::atomic<int> failures{0};
  std::atomic<int> answered{0};
  std::set<int> seen;         // read after Stop()
  std::string first_failure;  // read after Stop()

 private:
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::thread> threads_;
};

TEST_CASE("Serving.PredictBadRequestsAndSwapUnderLoad" * testing::Timeout(180)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  const std::string dag = testing::SourcePath("dags/breast_cancer.toml");
  // v1 in production; v2 (another split) registered but kept out by an impossible gate;
  // v3 broken.
  REQUIRE(RunSluice({"run", dag, "--state-dir", state, "-q"}).exit_code == 0);
  REQUIRE(RunSluice({"run", dag, "--state-dir", state, "-q", "-p", "seed=7", "-p", "min_auc=1.01"})
              .exit_code == 0);
  testing::WriteFile(dir.file("broken.toml"), kBrokenDag);
  REQUIRE(RunSluice({"run", dir.file("broken.toml"), "--state-dir", state, "-q"}).exit_code == 0);

  std::filesystem::create_directories(dir.file("dags"));
  ServingDaemon daemon({"serve", "--dags", dir.file("dags"), "--state-dir", state, "--listen",
                        "127.0.0.1:0", "--allow-unauthenticated", "--serving-workers", "2"},
                       dir.file("serve.log"));
  const int pid = daemon.pid();
  const unsigned short port = testing::DaemonPort(state);
  INFO(testing::ReadFile(dir.file("serve.log")));
  const std::string predict = "/api/v1/models/breast_cancer/predict";
  const std::string one = json{{"rows", Rows(1)}}.dump();

  testing::HttpReply r = HttpCall(port, "POST", predict, "", one);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  json answer = json::parse(r.body);
  CHECK(answer["model"] == "breast_cancer");
  CHECK(answer["version"] == 1);
  CHECK(answer["classes"] == json::array({"benign", "malignant"}));
  CHECK(answer["predictions"] == json::array({"malignant"}));  // the first row is malignant
  CHECK(answer["probabilities"][0][1].get<double>() > 0.9);

  // The columns form, several rows, and a pinned version.
  json columns = json::object();
  for (const json& row : Rows(3)) {
    for (const auto& [k, v] : row.items()) columns[k].push_back(v);
  }
  r = HttpCall(port, "POST", predict + "?version=2", "", json{{"columns", columns}}.dump());
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(json::parse(r.body)["version"] == 2);
  CHECK(json::parse(r.body)["predictions"].size() == 3);

  // Bad requests: 400 with what is wrong.
  json bad_type = Rows(1);
  bad_type[0]["radius_mean"] = "big";
  json missing = Rows(1);
  missing[0].erase("area_mean");
  json unknown = Rows(1);
  unknown[0]["colour"] = "red";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {json{{"rows", bad_type}}.dump(), "row 0: column \"radius_mean\" must be a number"},
      {json{{"rows", missing}}.dump(), "row 0: column \"area_mean\" is missing"},
      {json{{"rows", unknown}}.dump(), "row 0: unknown column \"colour\""},
      {json{{"rows", Rows(1)}, {"limit", 3}}.dump(), "unknown field \"limit\""},
      {json{{"rows", json::array()}}.dump(), "non-empty list"},
      {"{\"rows\": [", "not valid JSON"},
  };
  for (const auto& [body, expected] : bad) {
    r = HttpCall(port, "POST", predict, "", body);
    CHECK_MESSAGE(r.status == 400, body);
    CHECK_MESSAGE(Message(r).find(expected) != std::string::npos, r.body);
  }
  json many = json::array();
  for (int i = 0; i < 1001; ++i) many.push_back(Rows(1)[0]);
  r = HttpCall(port, "POST", predict, "", json{{"rows", many}}.dump());
  CHECK(r.status == 400);
  CHECK(Message(r) == "too many rows: 1001 (at most 1000 per request)");
  // Issue 15: a body nested 100,000 levels deep killed a serving worker with SIGSEGV.
  const std::string deep =
      "{\"rows\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  r = HttpCall(port, "POST", predict, "", deep);
  CHECK(r.status == 400);
  CHECK_MESSAGE(Message(r).find("levels deep") != std::string::npos, r.body);
  r = HttpCall(port, "POST", predict, "", one);
  CHECK_MESSAGE(r.status == 200, r.body);
  CHECK(HttpCall(port, "POST", "/api/v1/models/nope/predict", "", one).status == 404);
  CHECK(HttpCall(port, "POST", predict + "?version=x", "", one).status == 400);
  r = HttpCall(port, "POST", predict + "?version=99", "", one);
  CHECK(r.status == 404);
  CHECK(json::parse(r.body)["error"]["code"] == "not_found");
  CHECK(HttpCall(port, "POST", predict + "?aliass=production", "", one).status == 400);
  CHECK(HttpCall(port, "GET", predict).status == 405);

  // Load from 4 clients while production moves to v2, then to the broken v3.
  PredictLoad load(port, predict, one);
  auto serving = [&] {
    return json::parse(HttpCall(port, "GET", "/api/v1/models/breast_cancer/serving").body);
  };
  REQUIRE(RunSluice({"models", "promote", "breast_cancer", "2", "--alias", "production",
                     "--state-dir", state})
              .exit_code == 0);
  CHECK(testing::WaitFor([&] { return serving()["aliases"]["production"]["version"] == 2; }));
  const int before = load.answered;
  CHECK(testing::WaitFor([&] { return load.answered > before + 100; }));
  REQUIRE(RunSluice({"models", "promote", "breast_cancer", "3", "--alias", "production",
                     "--state-dir", state})
              .exit_code == 0);
  CHECK(testing::WaitFor([&] {
    return serving()["aliases"]["production"].value("failed", json::object()).value("version", 0) ==
           3;
  }));
  const int after = load.answered;
  CHECK(testing::WaitFor([&] { return load.answered > after + 100; }));
  load.Stop();

  CHECK_MESSAGE(load.failures == 0, load.first_failure);
  CHECK(load.seen == std::set<int>{1, 2});  // never 3
  const json status = serving();
  CHECK(status["aliases"]["production"]["version"] == 2);
  CHECK(status["aliases"]["production"]["failed"]["error"].get<std::string>().find("cannot load") !=
        std::string::npos);
  const std::string metrics = HttpCall(port, "GET", "/metrics").body;
  CHECK(metrics.find("sluice_model_swaps_total{model=\"breast_cancer\"} 1") != std::string::npos);
  CHECK(metrics.find("sluice_predictions_total{model=\"breast_cancer\",status=\"200\"}") !=
        std::string::npos);

  // kill -9 of a serving worker: another one starts, loads what is served, and answers.
  std::string workers;
  if (FILE* p = popen(("pgrep -P " + std::to_string(pid) + " -f serve-worker").c_str(), "r")) {
    char buf[256];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) workers.append(buf, n);
    pclose(p);
  }
  REQUIRE_MESSAGE(!workers.empty(), "no serving worker found under the daemon");
  kill(std::stoi(workers), SIGKILL);
  CHECK(testing::WaitFor([&] {
    const json w = serving()["workers"];
    return w["running"] == 2 && w["ready"] == 2 &&
           HttpCall(port, "POST", predict, "", one).status == 200;
  }));
  CHECK(json::parse(HttpCall(port, "POST", predict, "", one).body)["version"] == 2);

  CHECK(daemon.Stop());
}

// A model folder served by the test plugin's misbehaving predictor, in production.
constexpr const char* kEchoDag = R"(
[dag]
id = "echo"
[[task]]
id = "make"
plugin = "core.shell"
params = { command = "mkdir m && echo '{\"predictor\":\"servetest.echo\"}' > m/sluice-model.json", outputs = { model = "m" } }
[[task]]
id = "score"
plugin = "core.noop"
params = { outputs = { metrics = { auc = 1 } } }
[[task]]
id = "deploy"
plugin = "deploy.promote"
inputs = { model = "make.model", metrics = "score.metrics" }
params = { model = "echo" }
)";

TEST_CASE("Serving.MisbehavingPredictorsCostTheirRequestsOnly" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  const std::string plugins = std::string(SLUICE_TEST_PLUGIN_DIR) + "/servetest";
  testing::WriteFile(dir.file("echo.toml"), kEchoDag);
  REQUIRE(
      RunSluice({"run", dir.file("echo.toml"), "--state-dir", state, "-q", "--plugin-dir", plugins})
          .exit_code == 0);
  std::filesystem::create_directories(dir.file("dags"));
  ServingDaemon daemon({"serve", "--dags", dir.file("dags"), "--state-dir", state, "--listen",
                        "127.0.0.1:0", "--allow-unauthenticated", "--serving-workers", "2",
                        "--predict-timeout", "1s", "--plugin-dir", plugins},
                       dir.file("serve.log"));
  const unsigned short port = testing::DaemonPort(state);
  INFO(testing::ReadFile(dir.file("serve.log")));
  const std::string predict = "/api/v1/models/echo/predict";
  auto answered = [&] {
    testing::HttpReply ok = HttpCall(port, "POST", predict, "", R"({"x": 1})");
    return ok.status == 200 && json::parse(ok.body)["echo"]["x"] == 1;
  };
  REQUIRE(answered());

  testing::HttpReply r = HttpCall(port, "POST", predict, "", R"({"bad": true})");
  CHECK(r.status == 400);
  CHECK(Message(r) == "bad is set");
  r = HttpCall(port, "POST", predict, "", R"({"fail": true})");
  CHECK(r.status == 500);
  CHECK(Message(r) == "fail is set");

  // A crash costs its request (503), and the worker comes back.
  r = HttpCall(port, "POST", predict, "", R"({"crash": true})");
  CHECK(r.status == 503);
  CHECK(json::parse(r.body)["error"]["code"] == "worker_crashed");
  CHECK(testing::WaitFor(answered));

  // A hang gets 504 after the timeout; the worker is restarted, and others answer meanwhile.
  const auto started = std::chrono::steady_clock::now();
  r = HttpCall(port, "POST", predict, "", R"({"sleep_ms": 60000})");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CHECK(r.status == 504);
  CHECK(json::parse(r.body)["error"]["code"] == "timeout");
  CHECK(seconds < 5);
  CHECK(testing::WaitFor(answered));
  CHECK(testing::WaitFor([&] {
    const json w =
        json::parse(HttpCall(port, "GET", "/api/v1/models/echo/serving").body)["workers"];
    return w["running"] == 2 && w["ready"] == 2;
  }));
  const std::string metrics = HttpCall(port, "GET", "/metrics").body;
  CHECK(metrics.find("sluice_predictions_total{model=\"echo\",status=\"504\"} 1") !=
        std::string::npos);

  CHECK(daemon.Stop());
}

// How many `python -m sluice._serve` processes serve a model folder under `root` ([s]: not
// the shell that runs pgrep, whose own command line holds the pattern).
int PythonServers(const std::string& root) {
  int count = 0;
  if (FILE* p = popen(("pgrep -c -f '[s]luice._serve " + root + "'").c_str(), "r")) {
    if (std::fscanf(p, "%d", &count) != 1) count = 0;
    pclose(p);
  }
  return count;
}

// The first row of the Wine data set, without its label (class_0).
json WineRows() {
  json row = json::object();
  std::ifstream in(testing::SourcePath("examples/data/wine.csv"));
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::vector<std::string> header;
  std::stringstream h(line);
  for (std::string cell; std::getline(h, cell, ',');) header.push_back(cell);
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::stringstream cells(line);
  size_t i = 0;
  for (std::string cell; std::getline(cells, cell, ','); ++i) {
    if (header[i] != "cultivar") row[header[i]] = std::stod(cell);
  }
  return json::array({row});
}

TEST_CASE("Serving.PythonModelSwapsUnderLoadWithNoFailedRequest" * testing::Timeout(240)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  const std::string dag = testing::SourcePath("dags/wine_sklearn.toml");
  // v1 in production; v2 (another split) registered but kept out by an impossible gate.
  REQUIRE(RunSluice({"run", dag, "--state-dir", state, "-q"}).exit_code == 0);
  REQUIRE(
      RunSluice({"run", dag, "--state-dir", state, "-q", "-p", "seed=7", "-p", "min_accuracy=1.01"})
          .exit_code == 0);
  std::filesystem::create_directories(dir.file("dags"));
  ServingDaemon daemon({"serve", "--dags", dir.file("dags"), "--state-dir", state, "--listen",
                        "127.0.0.1:0", "--allow-unauthenticated", "--serving-workers", "2"},
                       dir.file("serve.log"));
  const unsigned short port = testing::DaemonPort(state);
  INFO(testing::ReadFile(dir.file("serve.log")));
  const std::string predict = "/api/v1/models/wine_sklearn/predict";
  const std::string one = json{{"rows", WineRows()}}.dump();

  testing::HttpReply r = HttpCall(port, "POST", predict, "", one);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  json answer = json::parse(r.body);
  CHECK(answer["version"] == 1);
  CHECK(answer["classes"] == json::array({"class_0", "class_1", "class_2"}));
  CHECK(answer["predictions"] == json::array({"class_0"}));  // the first row's cultivar
  CHECK(answer["probabilities"][0].size() == 3);
  // The predictor's own 400s.
  json wrong = WineRows();
  wrong[0]["proline"] = "lots";
  r = HttpCall(port, "POST", predict, "", json{{"rows", wrong}}.dump());
  CHECK(r.status == 400);
  CHECK_MESSAGE(Message(r).find("column \"proline\" must be a number") != std::string::npos,
                r.body);
  wrong = WineRows();
  wrong[0].erase("hue");
  r = HttpCall(port, "POST", predict, "", json{{"rows", wrong}}.dump());
  CHECK(r.status == 400);
  CHECK_MESSAGE(Message(r).find("column \"hue\" is missing") != std::string::npos, r.body);
  r = HttpCall(port, "POST", predict, "", R"({"rows": []})");
  CHECK(r.status == 400);

  // Load from 4 clients while production moves to v2.
  PredictLoad load(port, predict, one);
  auto serving = [&] {
    return json::parse(HttpCall(port, "GET", "/api/v1/models/wine_sklearn/serving").body);
  };
  CHECK(testing::WaitFor([&] { return load.answered > 100; }));
  REQUIRE(RunSluice({"models", "promote", "wine_sklearn", "2", "--alias", "production",
                     "--state-dir", state})
              .exit_code == 0);
  CHECK(testing::WaitFor([&] { return serving()["aliases"]["production"]["version"] == 2; }));
  const int before = load.answered;
  CHECK(testing::WaitFor([&] { return load.answered > before + 100; }));
  load.Stop();
  CHECK_MESSAGE(load.failures == 0, load.first_failure);
  CHECK(load.seen == std::set<int>{1, 2});
  // v1's Python processes are gone once it is unloaded: one per worker serves v2.
  CHECK(testing::WaitFor([&] { return PythonServers(state) == 2; }));

  CHECK(daemon.Stop());
  CHECK(testing::WaitFor([&] { return PythonServers(state) == 0; }));
}

// A Python model whose predict(rows) misbehaves on request, and the step that registers it.
constexpr const char* kPythonEchoPredictor = R"(import os, sys, time
from sluice import BadRequest

def predict(rows):
    do = rows[0].get("do", "")
    if do == "sleep":
        time.sleep(60)
    if do == "exit":
        os._exit(3)
    if do == "raise":
        raise RuntimeError("boom")
    if do == "bad":
        raise BadRequest("bad row")
    if do == "print":
        print("noise on stdout")
    if do == "nan":
        return [float("nan")]
    return [r.get("x", 0) * 2 for r in rows]
)";

constexpr const char* kPythonEchoStep = R"(from sluice import step

@step(outputs=["model"])
def make(ctx):
    import os
    os.makedirs("m")
    ctx.output_model("model", "m", predict="echo_predict.py", example={"x": 1})
    ctx.register_model("pyecho", output="model", alias="production", flavor="python")
)";

TEST_CASE("Serving.MisbehavingPythonPredictorsCostTheirRequestsOnly" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("echo_predict.py"), kPythonEchoPredictor);
  testing::WriteFile(dir.file("make.py"), kPythonEchoStep);
  testing::WriteFile(dir.file("pyecho.toml"),
                     "[dag]\nid = \"pyecho\"\n[[task]]\nid = \"make\"\nplugin = "
                     "\"python.function\"\nparams = { script = \"make.py\" }\n");
  const testing::CommandResult made =
      RunSluice({"run", dir.file("pyecho.toml"), "--state-dir", state, "-q"});
  REQUIRE_MESSAGE(made.exit_code == 0, made.err);
  std::filesystem::create_directories(dir.file("dags"));
  ServingDaemon daemon(
      {"serve", "--dags", dir.file("dags"), "--state-dir", state, "--listen", "127.0.0.1:0",
       "--allow-unauthenticated", "--serving-workers", "2", "--predict-timeout", "1s"},
      dir.file("serve.log"));
  const unsigned short port = testing::DaemonPort(state);
  INFO(testing::ReadFile(dir.file("serve.log")));
  const std::string predict = "/api/v1/models/pyecho/predict";
  auto answered = [&] {
    testing::HttpReply ok = HttpCall(port, "POST", predict, "", R"({"rows": [{"x": 2}]})");
    return ok.status == 200 && json::parse(ok.body)["predictions"] == json::array({4});
  };
  REQUIRE(answered());

  testing::HttpReply r = HttpCall(port, "POST", predict, "", R"({"rows": [{"do": "bad"}]})");
  CHECK(r.status == 400);
  CHECK(Message(r) == "bad row");
  r = HttpCall(port, "POST", predict, "", R"({"rows": [{"do": "raise"}]})");
  CHECK(r.status == 500);
  CHECK(Message(r) == "RuntimeError: boom");
  CHECK(testing::ReadFile(dir.file("serve.log")).find("Traceback") != std::string::npos);
  r = HttpCall(port, "POST", predict, "", R"({"rows": [{"do": "nan"}]})");
  CHECK(r.status == 500);
  CHECK_MESSAGE(Message(r).find("not JSON") != std::string::npos, r.body);
  // print() goes to the daemon's log, not into the answer.
  r = HttpCall(port, "POST", predict, "", R"({"rows": [{"do": "print", "x": 1}]})");
  CHECK_MESSAGE(r.status == 200, r.body);
  CHECK(testing::WaitFor([&] {
    return testing::ReadFile(dir.file("serve.log")).find("noise on stdout") != std::string::npos;
  }));
  CHECK(answered());

  // Python exiting mid-request costs that request; the next one starts it again.
  r = HttpCall(port, "POST", predict, "", R"({"rows": [{"do": "exit"}]})");
  CHECK(r.status == 500);
  CHECK_MESSAGE(Message(r).find("exited while answering") != std::string::npos, r.body);
  CHECK(testing::WaitFor(answered));

  // A hang gets 504 after the timeout; its worker, and the Python under it, are killed.
  r = HttpCall(port, "POST", predict, "", R"({"rows": [{"do": "sleep"}]})");
  CHECK(r.status == 504);
  CHECK(testing::WaitFor(answered));
  CHECK(testing::WaitFor([&] {
    const json w =
        json::parse(HttpCall(port, "GET", "/api/v1/models/pyecho/serving").body)["workers"];
    return w["running"] == 2 && w["ready"] == 2;
  }));
  CHECK(testing::WaitFor([&] { return PythonServers(state) == 2; }));  // none left behind

  CHECK(daemon.Stop());
  CHECK(testing::WaitFor([&] { return PythonServers(state) == 0; }));
}

}  // namespace
}  // namespace sluice
