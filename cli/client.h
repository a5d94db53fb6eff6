// The CLI's side of the REST API: finding the daemon that owns a state dir, and a small
// blocking HTTP client (Boost.Beast) for `sluice dags|trigger|runs|tasks|logs|backfill|tokens`.
#ifndef SLUICE_CLI_CLIENT_H_
#define SLUICE_CLI_CLIENT_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "sluice/status.h"

namespace sluice::cli {

// <state_dir>/admin-token: the first admin token, made by a daemon that starts with none.
std::string AdminTokenPath(const std::string& state_dir);

// Written by `sluice serve` at start (state_dir/daemon.json: url, pid), removed at exit.
void WriteDaemonFile(const std::string& path, const std::string& url);

struct ServerTarget {
  std::string url;    // "http://127.0.0.1:8080"
  std::string token;  // bearer token; empty: none
  std::string how;    // how it was found, for messages
};

// The daemon to talk to: --server, else $SLUICE_SERVER, else the live daemon that owns
// `state_dir` (its daemon.json, if its pid is alive). Token: --token, else $SLUICE_TOKEN, else
// (for the state dir's own daemon only) its admin-token file when it is readable.
// Null when there is none.
std::optional<ServerTarget> FindServer(const std::string& server_flag,
                                       const std::string& token_flag, const std::string& state_dir);

struct ApiReply {
  int status = 0;
  nlohmann::json body;  // parsed JSON; {"text": body} when the body is not JSON
  std::string raw;
};

// One request. Fails (IoError) only when the daemon cannot be reached.
StatusOr<ApiReply> CallApi(const ServerTarget& target, const std::string& method,
                           const std::string& target_path, const nlohmann::json* body = nullptr);

// "the daemon said: <message> (HTTP 409 conflict)", from an error reply.
std::string ApiErrorText(const ApiReply& reply);

// Percent-encodes a path segment or query value.
std::string UrlEncode(const std::string& text);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_CLIENT_H_
