// PeriodicTask: runs a function every `period` on a thread of its own until it returns false or
// the task is destroyed (which wakes the thread at once and joins it). For lease renewals
// (repo/lock_keeper.h, repo/writer_lease.h).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace cairn {

class PeriodicTask {
 public:
  // Calls fn() after each `period` (ns) of waiting; stops when fn returns false. A zero period
  // starts no thread.
  PeriodicTask(std::chrono::nanoseconds period, std::function<bool()> fn)
      : period_(period), fn_(std::move(fn)) {
    if (period_.count() > 0) thread_ = std::thread([this] { Run(); });
  }
  ~PeriodicTask() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

 private:
  void Run() {
    std::unique_lock lk(mu_);
    while (!cv_.wait_for(lk, period_, [this] { return stop_; })) {
      lk.unlock();
      const bool more = fn_();
      lk.lock();
      if (!more) return;
    }
  }
  const std::chrono::nanoseconds period_;
  const std::function<bool()> fn_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: started once everything it uses is constructed
};

}  // namespace cairn
