#include "client.h"

#include <signal.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sluice::cli {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using nlohmann::json;

std::string AdminTokenPath(const std::string& state_dir) {
  return (std::filesystem::path(state_dir) / "admin-token").string();
}

void WriteDaemonFile(const std::string& path, const std::string& url) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << json{{"url", url}, {"pid", static_cast<int>(getpid())}}.dump() << "\n";
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
}

std::optional<ServerTarget> FindServer(const std::string& server_flag,
                                       const std::string& token_flag,
                                       const std::string& state_dir) {
  ServerTarget target;
  const char* env_token = std::getenv("SLUICE_TOKEN");
  target.token = !token_flag.empty() ? token_flag : (env_token ? env_token : "");
  const char* env_server = std::getenv("SLUICE_SERVER");
  if (!server_flag.empty()) {
    target.url = server_flag;
    target.how = "--server";
  } else if (env_server && *env_server) {
    target.url = env_server;
    target.how = "$SLUICE_SERVER";
  } else {
    std::ifstream in(std::filesystem::path(state_dir) / "daemon.json");
    if (!in) return std::nullopt;
    try {
      json daemon = json::parse(in);
      const int pid = daemon.at("pid").get<int>();
      if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH)) return std::nullopt;  // stale
      target.url = daemon.at("url").get<std::string>();
      target.how = "the daemon (pid " + std::to_string(pid) + ") that owns " + state_dir;
      // The first admin token, only for the daemon of this state dir: never sent to a
      // server named by --server or $SLUICE_SERVER.
      if (target.token.empty()) {
        std::ifstream token_file(AdminTokenPath(state_dir));
        std::getline(token_file, target.token);
      }
    } catch (const json::exception&) {
      return std::nullopt;
    }
  }
  while (!target.url.empty() && target.url.back() == '/') target.url.pop_back();
  return target;
}

std::string UrlEncode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

StatusOr<ApiReply> CallApi(const ServerTarget& target, const std::string& method,
                           const std::string& target_path, const json* body) {
  // http://host:port
  std::string rest = target.url;
  if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
  } else if (rest.find("://") != std::string::npos) {
    return Status::InvalidArgument("server URL " + target.url +
                                   ": only http:// is supported (put TLS in a reverse proxy)");
  }
  const size_t colon = rest.rfind(':');
  const std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
  const std::string port = colon == std::string::npos ? "80" : rest.substr(colon + 1);
  try {
    boost::asio::io_context io;
    tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(30));
    stream.connect(resolver.resolve(host, port));
    http::request<http::string_body> req(http::string_to_verb(method), target_path, 11);
    req.set(http::field::host, host);
    req.set(http::field::user_agent, "sluice-cli");
    if (!target.token.empty()) req.set(http::field::authorization, "Bearer " + target.token);
    if (body != nullptr) {
      req.set(http::field::content_type, "application/json");
      req.body() = body->dump();
    }
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    http::read(stream, buffer, parser);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    ApiReply reply;
    reply.status = static_cast<int>(parser.get().result_int());
    reply.raw = parser.get().body();
    try {
      reply.body = json::parse(reply.raw);
    } catch (const json::exception&) {
      reply.body = {{"text", reply.raw}};
    }
    return reply;
  } catch (const std::exception& e) {
    return Status::IoError("cannot reach the daemon at " + target.url + " (found through " +
                           target.how + "): " + e.what());
  }
}

std::string ApiErrorText(const ApiReply& reply) {
  std::string message = reply.raw;
  std::string code;
  if (reply.body.contains("error") && reply.body["error"].is_object()) {
    message = reply.body["error"].value("message", message);
    code = reply.body["error"].value("code", "");
  }
  return message + " (HTTP " + std::to_string(reply.status) + (code.empty() ? "" : " " + code) +
         ")";
}

}  // namespace sluice::cli
