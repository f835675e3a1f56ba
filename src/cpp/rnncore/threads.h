// rnncore's own small thread pool (no OpenMP runtime, which clashes with
// other libraries loaded in the same process).
//
// A kernel call runs one parallel region: `parallel(n, fn)` calls fn(tid, n)
// on n threads, the caller being tid 0, and returns when all have finished.
// Inside the region the threads meet at a `Barrier` once or twice per time
// step.  Regions never nest.  Calls from several host threads at once are
// safe: a region that finds the pool busy runs on the calling thread alone
// (results do not depend on the thread count, see the cells).  The workers
// are named "rnncore-worker" and, on Linux, kept off the CPU of the thread
// that starts a region (pool.cpp says why).
#pragma once

#include <atomic>
#include <functional>

namespace rnncore::threads {

// Threads a kernel may use: RNNCORE_NUM_THREADS when set, else the number
// of hardware threads; set_num_threads(n) changes it (n >= 1).
int num_threads();
void set_num_threads(int n);

// Subnormal floats (below 1.2e-38 in float32) cost 10-100x a normal value
// in the arithmetic units; gradients that decay over many steps of BPTT
// reach them.  With flushing on (the default), every thread of a region
// runs with flush-to-zero and denormals-are-zero (x86 MXCSR), restored when
// the region ends: subnormal inputs count as 0 and subnormal results become
// 0.  Off: IEEE gradual underflow, as NumPy and PyTorch by default.
bool flush_denormal();
void set_flush_denormal(bool on);

// A parallel region: takes the pool for up to n threads (clamped to
// [1, num_threads()]; 1 when another host thread holds the pool) until it
// is destroyed.  size() is the number of threads run() will use, so a
// Barrier for the region is built with it.
class Region {
 public:
  explicit Region(int n);
  ~Region();
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
  int size() const { return n_; }
  // Runs fn(tid, size()) for tid in [0, size()).  An exception thrown by
  // fn on any thread is rethrown here once all have returned (the first
  // one, if several threw); a thread that throws must not leave others
  // waiting at a barrier (see cells/sequence.h's ready()).
  void run(const std::function<void(int tid, int n)>& fn);

 private:
  int n_;
  bool owns_pool_ = false;
};

// Region(n).run(fn), for work that needs no barrier.
void parallel(int n, const std::function<void(int tid, int n)>& fn);

// Reusable barrier for the n threads of one region: spins briefly, then
// yields, so a step's handover costs well under a microsecond when cores are
// free and does not starve others when they are not.
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait();

 private:
  const int n_;
  std::atomic<int> arrived_{0};
  std::atomic<unsigned> generation_{0};
};

// [begin, end) of the share of `total` items that thread tid of n gets, in
// multiples of `grain` (the last share takes the remainder).
struct Range {
  long begin, end;
};
Range split(long total, long grain, int tid, int n);

}  // namespace rnncore::threads
