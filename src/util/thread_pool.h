// ThreadPool: a fixed set of worker threads running submitted tasks; Submit returns a future.
// Ordered pipelines bound their memory by capping the futures they keep in flight.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace cairn {

class ThreadPool {
 public:
  // Throws std::system_error when a thread cannot be started (after stopping the ones that
  // were), so a caller can turn it into an error instead of an abort.
  explicit ThreadPool(size_t threads) {
    if (threads == 0) threads = 1;
    try {
      for (size_t i = 0; i < threads; i++) workers_.emplace_back([this] { Run(); });
    } catch (...) {
      StopAll();
      throw;
    }
  }
  ~ThreadPool() { StopAll(); }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size(); }

  template <typename F>
  auto Submit(F&& f) -> std::future<decltype(f())> {
    using R = decltype(f());
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(f));
    auto fut = task->get_future();
    {
      std::lock_guard lk(mu_);
      tasks_.emplace_back([task] { (*task)(); });
    }
    cv_.notify_one();
    return fut;
  }

 private:
  void StopAll() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  void Run() {
    for (;;) {
      std::function<void()> t;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [this] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        t = std::move(tasks_.front());
        tasks_.pop_front();
      }
      t();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> workers_;
  bool stop_ = false;
};

// Waits on destruction for every still valid future in `q` (a deque or vector of futures): a
// pipeline that returns early leaves no pool task running on state it is about to free.
template <typename Queue>
class WaitAllOnExit {
 public:
  explicit WaitAllOnExit(Queue& q) : q_(q) {}
  ~WaitAllOnExit() {
    for (auto& f : q_)
      if (f.valid()) f.wait();
  }
  WaitAllOnExit(const WaitAllOnExit&) = delete;
  WaitAllOnExit& operator=(const WaitAllOnExit&) = delete;

 private:
  Queue& q_;
};

}  // namespace cairn
