// The persistent worker threads behind rnncore::threads::parallel.
//
// Workers sleep on a condition variable between regions and wake when the
// region counter moves; the caller works as thread 0 and then waits for the
// others to report done.  After fork() the child has no workers: the pool is
// rebuilt on first use there.
#include "rnncore/threads.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RNNCORE_PAUSE() _mm_pause()
#else
#define RNNCORE_PAUSE() ((void)0)
#endif

namespace rnncore::threads {
namespace {

int default_threads() {
  if (const char* env = std::getenv("RNNCORE_NUM_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n >= 1 && n <= 1024)
      return static_cast<int>(n);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

std::atomic<int> g_threads{0};
std::atomic<bool> g_flush{true};

// The calling thread's floating-point mode for the duration of a region's
// work: flush-to-zero and denormals-are-zero when flushing is on.
class DenormalMode {
 public:
#if defined(__x86_64__) || defined(__i386__)
  DenormalMode() : saved_(_mm_getcsr()) {
    if (g_flush.load(std::memory_order_relaxed))
      _mm_setcsr(saved_ | kFlushBits);
  }
  ~DenormalMode() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned kFlushBits = 0x8040;  // FTZ (bit 15) | DAZ (bit 6)
  unsigned saved_;
#endif
};

class Pool {
 public:
  // The pool serves one region at a time.
  bool try_take() { return busy_.try_lock(); }
  void give_back() { busy_.unlock(); }

  // Runs a region of n > 1 threads; the caller has taken the pool.
  void run(int n, const std::function<void(int, int)>& fn) {
    grow(n - 1);
    keep_off_callers_cpu();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &fn;
      job_threads_ = n;
      pending_.store(n - 1, std::memory_order_relaxed);
      ++region_;
    }
    wake_.notify_all();
    call(fn, 0, n);
    for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins)
      if (spins < 4096)
        RNNCORE_PAUSE();
      else
        std::this_thread::yield();
    std::exception_ptr error;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      std::swap(error, error_);
    }
    if (error) std::rethrow_exception(error);
  }

 private:
  void grow(int workers) {
    while (static_cast<int>(handles_.size()) < workers) {
      const int tid = static_cast<int>(handles_.size()) + 1;
      std::thread worker([this, tid] { work(tid); });
#if defined(__linux__)
      pthread_setname_np(worker.native_handle(), "rnncore-worker");
      if (pthread_getaffinity_np(worker.native_handle(), sizeof(cpus_), &cpus_) == 0)
        callers_cpu_ = -1;  // masks to set, from the new worker's (its creator's)
#endif
      handles_.push_back(worker.native_handle());
      worker.detach();
    }
  }

  // Workers run on the CPUs they were started with (their creator's) but
  // the one the caller is on, when there are others.  Why: the region's
  // threads meet at a barrier every time step, and a worker woken onto the
  // caller's CPU shares it with the caller until the scheduler moves one of
  // them.  On this project's VM, a worker woken after the other vCPU had
  // been idle for a while was put beside its waker (probably because the
  // guest takes an idle vCPU for preempted by the host): an LSTM at T =
  // 100, B = 1, H = 256 called every 50 ms took 8.5-8.9 ms on 2 threads
  // (median), 1.8x its 1-thread time and 4x its time back to back; with
  // the caller's CPU left out, 2.2-2.4 ms.  The masks change only when the
  // caller is found on another CPU than last time (sched_getcpu reads it
  // without a system call).
  void keep_off_callers_cpu() {
#if defined(__linux__)
    const int cpu = sched_getcpu();
    if (cpu < 0 || cpu == callers_cpu_) return;
    callers_cpu_ = cpu;
    cpu_set_t mask = cpus_;
    if (CPU_ISSET(cpu, &mask) && CPU_COUNT(&mask) > 1) CPU_CLR(cpu, &mask);
    for (pthread_t h : handles_) pthread_setaffinity_np(h, sizeof(mask), &mask);
#endif
  }

  // fn(tid, n), keeping the region's first exception for the caller: an
  // exception leaving a worker would end the process.
  void call(const std::function<void(int, int)>& fn, int tid, int n) {
    DenormalMode mode;
    try {
      fn(tid, n);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  void work(int tid) {
    unsigned long seen = 0;
    for (;;) {
      const std::function<void(int, int)>* job;
      int n;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return region_ != seen; });
        seen = region_;
        job = job_;
        n = job_threads_;
      }
      if (tid < n) {
        call(*job, tid, n);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  std::mutex busy_;  // held by the Region using the pool
  std::mutex mutex_;
  std::condition_variable wake_;
  unsigned long region_ = 0;
  const std::function<void(int, int)>* job_ = nullptr;
  int job_threads_ = 0;
  std::atomic<int> pending_{0};
  std::exception_ptr error_;  // the running region's first exception
  std::vector<pthread_t> handles_;  // the workers (detached, never exit)
#if defined(__linux__)
  cpu_set_t cpus_{};       // the CPUs the newest worker started with
  int callers_cpu_ = -1;   // the one the workers' masks leave out
#endif
};

// Never destroyed: detached workers may still sleep in it at exit, and a
// forked child must not touch its parent's threads.
Pool* g_pool = nullptr;
std::once_flag g_pool_once;

void forget_pool_after_fork() { g_pool = nullptr; }

Pool& pool() {
  std::call_once(g_pool_once, [] {
    pthread_atfork(nullptr, nullptr, forget_pool_after_fork);
  });
  if (!g_pool) g_pool = new Pool;
  return *g_pool;
}

}  // namespace

int num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n == 0) {
    g_threads.compare_exchange_strong(n, default_threads());
    n = g_threads.load(std::memory_order_relaxed);
  }
  return n;
}

void set_num_threads(int n) { g_threads.store(std::max(1, n)); }

Region::Region(int n) : n_(std::clamp(n, 1, num_threads())) {
  if (n_ > 1) {
    owns_pool_ = pool().try_take();
    if (!owns_pool_) n_ = 1;
  }
}

Region::~Region() {
  if (owns_pool_) pool().give_back();
}

bool flush_denormal() { return g_flush.load(); }
void set_flush_denormal(bool on) { g_flush.store(on); }

void Region::run(const std::function<void(int, int)>& fn) {
  if (n_ == 1) {
    DenormalMode mode;
    return fn(0, 1);
  }
  pool().run(n_, fn);
}

void parallel(int n, const std::function<void(int, int)>& fn) {
  Region(n).run(fn);
}

void Barrier::wait() {
  const unsigned gen = generation_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
    arrived_.store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    return;
  }
  for (int spins = 0; generation_.load(std::memory_order_acquire) == gen;
       ++spins)
    if (spins < 4096)
      RNNCORE_PAUSE();
    else
      std::this_thread::yield();
}

Range split(long total, long grain, int tid, int n) {
  const long chunks = (total + grain - 1) / grain;
  const long per = chunks / n, extra = chunks % n;
  const long first = tid * per + std::min<long>(tid, extra);
  const long count = per + (tid < extra ? 1 : 0);
  return {std::min(total, first * grain),
          std::min(total, (first + count) * grain)};
}

}  // namespace rnncore::threads
