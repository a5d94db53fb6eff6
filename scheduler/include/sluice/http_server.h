// A small HTTP/1.1 server on Boost.Beast for the daemon's REST API. It parses requests,
// enforces a body size limit, and hands each request to one handler on the io_context
// thread; the handler's response is sent back. Connections are kept alive.
//
// Beast stays in http_server.cc: this header is plain structs.
// Threading: everything runs on the io_context thread given at construction.
#ifndef SLUICE_HTTP_SERVER_H_
#define SLUICE_HTTP_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "sluice/status.h"

namespace boost::asio {
class io_context;
}

namespace sluice {

struct HttpRequest {
  std::string method;  // "GET", "POST", …
  std::string path;    // without the query string, percent-decoded
  std::map<std::string, std::string> query;
  std::string body;
  std::string remote;         // the peer's address, "127.0.0.1:53412"
  std::string authorization;  // the Authorization header, if any
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  // Answers by calling `respond` exactly once, now or later, on the io thread.
  using Respond = std::function<void(HttpResponse)>;
  using AsyncHandler = std::function<void(const HttpRequest&, Respond)>;

  struct Options {
    std::string address = "127.0.0.1";
    unsigned short port = 8080;       // 0 picks a free port (see port())
    size_t max_body_bytes = 1 << 20;  // larger requests get 413
  };

  HttpServer(boost::asio::io_context& io, Options options, Handler handler);
  HttpServer(boost::asio::io_context& io, Options options, AsyncHandler handler);
  ~HttpServer();

  // Binds and starts accepting. Fails with a clear message when the address is taken.
  Status Start();
  void Stop();
  unsigned short port() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice

#endif  // SLUICE_HTTP_SERVER_H_
