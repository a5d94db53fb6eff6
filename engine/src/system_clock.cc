#include "sluice/system_clock.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>

namespace sluice {

void SystemClock::RunAfter(Duration delay, std::function<void()> fn) {
  if (delay.count() <= 0) {
    boost::asio::post(io_, std::move(fn));
    return;
  }
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, delay);
  timer->async_wait([timer, fn = std::move(fn)](boost::system::error_code ec) {
    if (!ec) fn();
  });
}

}  // namespace sluice
