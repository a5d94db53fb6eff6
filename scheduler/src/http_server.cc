#include "sluice/http_server.h"

#include <fcntl.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace sluice {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

HttpRequest Convert(const http::request<http::string_body>& req) {
  HttpRequest out;
  out.method = std::string(req.method_string());
  const auto raw_target = req.target();
  std::string_view target(raw_target.data(), raw_target.size());
  size_t q = target.find('?');
  out.path = PercentDecode(target.substr(0, q));
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      size_t eq = pair.find('=');
      out.query[PercentDecode(pair.substr(0, eq))] =
          eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1));
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  out.body = req.body();
  if (auto it = req.find(http::field::authorization); it != req.end())
    out.authorization = std::string(it->value());
  return out;
}

// Asio opens sockets without O_CLOEXEC. A process this one starts keeps none of them
// (SpawnChild also closes every descriptor it does not pass), so that the port and the
// connections end with the daemon.
void KeepInThisProcess(int fd) { fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC); }

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServer::AsyncHandler& handler, size_t max_body)
      : stream_(std::move(socket)), handler_(handler), max_body_(max_body) {}

  void Read() {
    parser_.emplace();
    parser_->body_limit(max_body_);
    stream_.expires_after(std::chrono::seconds(60));
    auto self = shared_from_this();
    http::async_read(stream_, buffer_, *parser_,
                     [self](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout) return Close();
    if (ec == http::error::body_limit) {
      linger_ = true;  // read the rest of the body after answering, or the client may see a reset
      return Send(
          413,
          R"({"error":{"code":"payload_too_large","message":"request body is larger than )" +
              std::to_string(max_body_) + R"( bytes"}})",
          false);
    }
    if (ec) {
      return Send(400, R"({"error":{"code":"bad_request","message":"malformed HTTP request"}})",
                  false);
    }
    const auto& req = parser_->get();
    auto self = shared_from_this();
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive();
    // The handler answers now or later (a prediction waits for a serving worker), but once,
    // on the io thread; the session reads nothing more until then.
    auto respond = [self, version, keep_alive](HttpResponse response) {
      self->response_.emplace(static_cast<http::status>(response.status), version);
      self->response_->set(http::field::server, "sluice");
      self->response_->set(http::field::content_type, response.content_type);
      self->response_->keep_alive(keep_alive);
      self->response_->body() = std::move(response.body);
      self->response_->prepare_payload();
      self->Write();
    };
    try {
      HttpRequest converted = Convert(req);
      beast::error_code peer_ec;
      const tcp::endpoint peer = stream_.socket().remote_endpoint(peer_ec);
      if (!peer_ec)
        converted.remote = peer.address().to_string() + ":" + std::to_string(peer.port());
      handler_(converted, respond);
    } catch (const std::exception& e) {
      respond({500, "application/json",
               std::string(R"({"error":{"code":"internal","message":"internal error"}})")});
    }
  }

  void Send(int status, std::string body, bool keep_alive) {
    response_.emplace(static_cast<http::status>(status), 11);
    response_->set(http::field::server, "sluice");
    response_->set(http::field::content_type, "application/json");
    response_->keep_alive(keep_alive);
    response_->body() = std::move(body);
    response_->prepare_payload();
    Write();
  }

  void Write() {
    auto self = shared_from_this();
    http::async_write(stream_, *response_, [self](beast::error_code ec, size_t) {
      if (!ec && self->linger_) return self->Drain();
      if (ec || !self->response_->keep_alive()) return self->Close();
      self->Read();
    });
  }

  // Discards what the client still sends (bounded in time), then closes.
  void Drain() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(2));
    auto self = shared_from_this();
    stream_.async_read_some(asio::buffer(discard_), [self](beast::error_code ec, size_t) {
      if (!ec) self->Drain();
    });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  HttpServer::AsyncHandler handler_;  // a copy: a connection may outlive the server object
  size_t max_body_;
  bool linger_ = false;
  std::array<char, 16384> discard_{};
};

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io_context, Options opts, AsyncHandler h)
      : io(io_context), options(std::move(opts)), handler(std::move(h)), acceptor(io_context) {}

  void Accept() {
    auto self = shared_from_this();
    acceptor.async_accept([self](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
      if (!ec) {
        KeepInThisProcess(socket.native_handle());
        std::make_shared<Session>(std::move(socket), self->handler, self->options.max_body_bytes)
            ->Read();
      }
      self->Accept();
    });
  }

  asio::io_context& io;
  Options options;
  AsyncHandler handler;
  tcp::acceptor acceptor;
};

HttpServer::HttpServer(asio::io_context& io, Options options, Handler handler)
    : HttpServer(
          io, std::move(options),
          [handler = std::move(handler)](const HttpRequest& request, const Respond& respond) {
            respond(handler(request));
          }) {}

HttpServer::HttpServer(asio::io_context& io, Options options, AsyncHandler handler)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  beast::error_code ec;
  const auto address = asio::ip::make_address(impl_->options.address, ec);
  if (ec)
    return Status::InvalidArgument("--listen: \"" + impl_->options.address +
                                   "\" is not an IP address");
  const tcp::endpoint endpoint(address, impl_->options.port);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) KeepInThisProcess(impl_->acceptor.native_handle());
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::FailedPrecondition("cannot listen on " + impl_->options.address + ":" +
                                      std::to_string(impl_->options.port) + ": " + ec.message() +
                                      " (is another daemon running there? use --listen HOST:PORT)");
  }
  impl_->Accept();
  return Status::Ok();
}

void HttpServer::Stop() {
  beast::error_code ignored;
  if (impl_->acceptor.is_open()) impl_->acceptor.close(ignored);
}

unsigned short HttpServer::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

}  // namespace sluice
