// Model serving benchmark: the figures issue 6 names, on a real `sluice serve` with real
// serving workers and the breast-cancer models the ML pipeline trains.
//
//   pipeline  dags/breast_cancer.toml, cold, in embedded mode (a fresh state dir; process
//             start, plugin scan, training and evaluation included)
//   latency   N one-row POST /api/v1/models/breast_cancer/predict, one after another on one
//             keep-alive connection: median, p99, max (client-side, loopback)
//   rate      wrk (Debian's) -t2 -c32 with the same one-row request: requests/s, errors
//   swap      the same wrk load while production moves v1 -> v2 halfway: failed requests
//
// Usage: sluice_bench_serving [--sluice PATH] [--workdir DIR] [--requests N] [--wrk-seconds S]
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench_util.h"

namespace fs = std::filesystem;
namespace http = boost::beast::http;
using boost::asio::ip::tcp;
using sluice::bench::Capture;
using sluice::bench::Percentile;
using sluice::bench::SecondsSince;

namespace {

struct Options {
  std::string sluice;
  std::string workdir = "/tmp/sluice-bench-serving";
  int requests = 5000;
  int wrk_seconds = 10;
};

// The first data row without its label, as {"rows": [{...}]}.
std::string OneRowRequest(const std::string& csv) {
  std::ifstream in(csv);
  std::string header;
  std::string row;
  std::getline(in, header);
  std::getline(in, row);
  for (std::string* line : {&header, &row}) {
    if (!line->empty() && line->back() == '\r') line->pop_back();
  }
  std::stringstream h(header);
  std::stringstream r(row);
  nlohmann::json out = nlohmann::json::object();
  for (std::string name, value; std::getline(h, name, ',') && std::getline(r, value, ',');) {
    if (name != "diagnosis") out[name] = std::stod(value);
  }
  return nlohmann::json{{"rows", {out}}}.dump();
}

// wrk's report: requests/s and the count of failed answers (non-2xx and socket errors).
struct WrkResult {
  std::string rate = "?";
  std::string failures = "0";
  std::string raw;
};

WrkResult RunWrk(const std::string& url, const std::string& script, int seconds) {
  WrkResult r;
  r.raw = Capture("wrk -t2 -c32 -d" + std::to_string(seconds) + "s --latency -s '" + script +
                  "' '" + url + "' 2>&1");
  const size_t at = r.raw.find("Requests/sec:");
  if (at != std::string::npos) {
    std::string line = r.raw.substr(at + 13, r.raw.find('\n', at) - at - 13);
    line.erase(0, line.find_first_not_of(' '));
    r.rate = line;
  }
  long failed = 0;
  const size_t non2xx = r.raw.find("Non-2xx or 3xx responses:");
  if (non2xx != std::string::npos) failed += std::atol(r.raw.c_str() + non2xx + 26);
  const size_t socket = r.raw.find("Socket errors:");
  if (socket != std::string::npos) {
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    std::stringstream in(r.raw.substr(socket + 14, r.raw.find('\n', socket) - socket - 14));
    for (std::string word; in >> word;) {
      if (std::isdigit(static_cast<unsigned char>(word[0]))) failed += std::atol(word.c_str());
    }
  }
  r.failures = std::to_string(failed);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.sluice = (fs::read_symlink("/proc/self/exe").parent_path() / "sluice").string();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--sluice") {
      o.sluice = argv[i + 1];
    } else if (flag == "--workdir") {
      o.workdir = argv[i + 1];
    } else if (flag == "--requests") {
      o.requests = std::atoi(argv[i + 1]);
    } else if (flag == "--wrk-seconds") {
      o.wrk_seconds = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr,
                   "usage: sluice_bench_serving [--sluice PATH] [--workdir DIR] [--requests N] "
                   "[--wrk-seconds S]\n");
      return 2;
    }
  }
  const fs::path source = fs::path(SLUICE_SOURCE_DIR);
  fs::remove_all(o.workdir);
  fs::create_directories(o.workdir + "/dags");
  const std::string state = o.workdir + "/state";
  const std::string dag = (source / "dags/breast_cancer.toml").string();

  // 1. The pipeline, cold; then a second model version (another split) kept out of
  // production by an impossible gate, for the swap.
  auto t0 = std::chrono::steady_clock::now();
  int rc = std::system(("'" + o.sluice + "' run '" + dag + "' --state-dir '" + state + "' -q > '" +
                        o.workdir + "/run1.log' 2>&1")
                           .c_str());
  const double pipeline = SecondsSince(t0);
  std::printf(
      "pipeline  dags/breast_cancer.toml, cold, embedded: %.2f s (exit %d)  [target < 5 s]\n",
      pipeline, WEXITSTATUS(rc));
  rc = std::system(("'" + o.sluice + "' run '" + dag + "' --state-dir '" + state +
                    "' -q -p seed=7 -p min_auc=1.01 > '" + o.workdir + "/run2.log' 2>&1")
                       .c_str());
  if (WEXITSTATUS(rc) != 0) {
    std::fprintf(stderr, "the second run failed; see %s/run2.log\n", o.workdir.c_str());
    return 1;
  }
  std::fflush(stdout);

  // 2. The daemon.
  const int port = 30000 + getpid() % 20000;
  const pid_t daemon = sluice::bench::StartDaemon(
      o.sluice,
      {"--dags", o.workdir + "/dags", "--state-dir", state, "--listen",
       "127.0.0.1:" + std::to_string(port), "--allow-unauthenticated", "--serving-workers", "2"},
      state, o.workdir + "/serve.log");
  if (daemon < 0) return 1;
  const std::string target = "/api/v1/models/breast_cancer/predict";
  const std::string body =
      OneRowRequest((source / "examples/data/breast_cancer_wisconsin.csv").string());

  // 3. Latency, one request at a time on one connection.
  std::vector<double> latencies;
  int failed = 0;
  try {
    boost::asio::io_context io;
    tcp::socket socket(io);
    boost::asio::connect(socket, tcp::resolver(io).resolve("127.0.0.1", std::to_string(port)));
    boost::beast::flat_buffer buffer;
    for (int i = 0; i < o.requests + 100; ++i) {
      http::request<http::string_body> req(http::verb::post, target, 11);
      req.set(http::field::host, "127.0.0.1");
      req.set(http::field::content_type, "application/json");
      req.keep_alive(true);
      req.body() = body;
      req.prepare_payload();
      const auto start = std::chrono::steady_clock::now();
      http::write(socket, req);
      http::response<http::string_body> res;
      http::read(socket, buffer, res);
      const double seconds = SecondsSince(start);
      if (res.result_int() != 200) ++failed;
      if (i >= 100) latencies.push_back(seconds);  // the first 100 warm up
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "latency: %s\n", e.what());
  }
  std::printf(
      "latency   %zu one-row requests, sequential, keep-alive: median %.3f ms, p99 %.3f ms, "
      "max %.3f ms, %d failed  [target p99 < 5 ms]\n",
      latencies.size(), 1000 * Percentile(latencies, 0.5), 1000 * Percentile(latencies, 0.99),
      1000 * Percentile(latencies, 1.0), failed);
  std::fflush(stdout);

  // 4. Throughput and 5. a swap under load, with wrk.
  if (Capture("command -v wrk").empty()) {
    std::printf("rate      skipped: wrk is not installed (apt-get install wrk)\n");
    sluice::bench::StopDaemon(daemon);
    return 0;
  }
  const std::string script = o.workdir + "/post.lua";
  std::ofstream(script) << "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = "
                           "\"application/json\"\nwrk.body = "
                        << nlohmann::json(body).dump() << "\n";
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + target;
  WrkResult rate = RunWrk(url, script, o.wrk_seconds);
  const size_t p99 = rate.raw.find("99%");
  std::printf(
      "rate      wrk -t2 -c32 %ds, one-row requests: %s req/s, %s failed, p99 %s  "
      "[target >= 2,000 req/s]\n",
      o.wrk_seconds, rate.rate.c_str(), rate.failures.c_str(),
      p99 == std::string::npos
          ? "?"
          : rate.raw.substr(p99 + 3, rate.raw.find('\n', p99) - p99 - 3).c_str());
  std::fflush(stdout);

  std::thread promote([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(o.wrk_seconds * 500));
    Capture("'" + o.sluice + "' models promote breast_cancer 2 --alias production --state-dir '" +
            state + "' 2>&1");
  });
  WrkResult swap = RunWrk(url, script, o.wrk_seconds);
  promote.join();
  int now_serving = 0;
  try {
    boost::asio::io_context io;
    tcp::socket socket(io);
    boost::asio::connect(socket, tcp::resolver(io).resolve("127.0.0.1", std::to_string(port)));
    http::request<http::string_body> req(http::verb::get, "/api/v1/models/breast_cancer/serving",
                                         11);
    req.set(http::field::host, "127.0.0.1");
    http::write(socket, req);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    now_serving = nlohmann::json::parse(res.body())["aliases"]["production"]["version"].get<int>();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "serving status: %s\n", e.what());
  }
  std::printf(
      "swap      wrk -t2 -c32 %ds while production moves v1 -> v2: %s req/s, %s failed; "
      "serving v%d after  [target 0 failed]\n",
      o.wrk_seconds, swap.rate.c_str(), swap.failures.c_str(), now_serving);
  sluice::bench::StopDaemon(daemon);
  return 0;
}
