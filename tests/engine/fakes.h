// Test doubles for the run logic: a clock moved by hand and an executor that only records
// what it is asked to do. The tests finish tries themselves through the ExecutorListener.
#ifndef SLUICE_TESTS_FAKES_H_
#define SLUICE_TESTS_FAKES_H_

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sluice/executor.h"
#include "sluice/plugin_host.h"

namespace sluice::testing {

class ManualClock : public Clock {
 public:
  explicit ManualClock(boost::asio::io_context& io) : io_(io) {}
  std::chrono::system_clock::time_point Now() override { return now_; }
  void RunAfter(Duration delay, std::function<void()> fn) override {
    pending_.emplace(now_ + delay, std::move(fn));
  }
  void Advance(Duration d) {
    now_ += d;
    while (!pending_.empty() && pending_.begin()->first <= now_) {
      auto fn = std::move(pending_.begin()->second);
      pending_.erase(pending_.begin());
      fn();
    }
  }

 private:
  boost::asio::io_context& io_;
  std::chrono::system_clock::time_point now_ =
      std::chrono::sys_days(std::chrono::year(2026) / 1 / 2) + std::chrono::hours(3);
  std::multimap<std::chrono::system_clock::time_point, std::function<void()>> pending_;
};

class FakeExecutor : public Executor {
 public:
  explicit FakeExecutor(size_t capacity) : capacity_(capacity) {}
  size_t capacity() const override { return capacity_; }
  void Launch(TaskLaunch launch) override {
    REQUIRE(running.size() < capacity_);
    order.push_back(launch.request["run"]["task_id"].get<std::string>());
    running[launch.request["run"]["task_id"].get<std::string>()] = std::move(launch);
  }
  void Cancel(const std::string& key) override { cancelled.push_back(key); }

  std::map<std::string, TaskLaunch> running;  // task id -> launch
  std::vector<std::string> order;             // task ids in launch order
  std::vector<std::string> cancelled;         // keys Cancel was called with

 private:
  size_t capacity_;
};

// A catalog with one plugin, "core", that provides `steps` (no library behind it).
inline PluginCatalog FakeCatalog(std::initializer_list<const char*> steps) {
  PluginManifest core;
  core.name = "core";
  core.file = "/fake/core.so";
  for (const char* step : steps) {
    StepManifest s;
    s.name = step;
    core.steps.push_back(s);
  }
  PluginCatalog catalog;
  catalog.plugins.push_back(core);
  return catalog;
}

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_FAKES_H_
