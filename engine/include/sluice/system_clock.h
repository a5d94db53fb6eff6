// The real Clock: wall time, and delayed callbacks on an io_context's timers.
#ifndef SLUICE_SYSTEM_CLOCK_H_
#define SLUICE_SYSTEM_CLOCK_H_

#include "sluice/executor.h"

namespace boost::asio {
class io_context;
}

namespace sluice {

class SystemClock : public Clock {
 public:
  explicit SystemClock(boost::asio::io_context& io) : io_(io) {}
  std::chrono::system_clock::time_point Now() override { return std::chrono::system_clock::now(); }
  void RunAfter(Duration delay, std::function<void()> fn) override;

 private:
  boost::asio::io_context& io_;
};

}  // namespace sluice

#endif  // SLUICE_SYSTEM_CLOCK_H_
