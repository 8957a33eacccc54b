// thread_pool.cpp — persistent workers that spin briefly, then sleep on a condition
// variable, between jobs.
//
// A job is `pieces` calls of one function. The caller and the workers take piece
// numbers from a shared atomic counter until none are left; the caller then waits
// for the last one to finish. Which thread runs a piece does not matter, since each
// piece writes its own outputs.
#include "engine/thread_pool.h"

#include "engine/error.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pf {
namespace {

thread_local bool inside_task = false;  // nested parallel calls run inline

// Marks the calling thread as running a piece, for the inline paths, so that nested
// calls behave the same whether or not the pool was used (and so, on any thread count).
struct TaskScope {
    bool previous = inside_task;
    TaskScope() { inside_task = true; }
    ~TaskScope() { inside_task = previous; }
};

class ThreadPool {
public:
    explicit ThreadPool(int threads) {
        for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
    }

    ~ThreadPool() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        for (auto& worker : workers_) worker.join();
    }

    int threads() const { return int(workers_.size()) + 1; }

    void run(int64_t pieces, const std::function<void(int64_t)>& fn) {
        std::unique_lock<std::mutex> job_lock(job_mutex_);  // one job at a time
        {
            // Workers still inside the previous job (finding no pieces left) must leave
            // before its state is overwritten.
            std::unique_lock<std::mutex> lock(mutex_);
            idle_.wait(lock, [this] { return active_ == 0; });
            task_ = &fn;
            pieces_ = pieces;
            next_piece_ = 0;
            unfinished_ = pieces;
            error_ = nullptr;
            ++generation_;
        }
        wake_.notify_all();
        take_pieces();
        spin_until([this] { return unfinished_.load() == 0; });
        std::unique_lock<std::mutex> lock(mutex_);
        finished_.wait(lock, [this] { return unfinished_ == 0; });
        if (error_) std::rethrow_exception(error_);
    }

private:
    // Waits up to kSpinSeconds for `ready` before the caller sleeps on a condition
    // variable: a training step makes hundreds of parallel calls a few microseconds
    // apart, and waking a sleeping thread takes tens of microseconds on a busy or
    // virtual machine, long beside a short call's pieces on 16 cores.
    template <typename Ready>
    static void spin_until(const Ready& ready) {
        constexpr double kSpinSeconds = 50e-6;
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; !ready(); ++i) {
            if (i % 64 == 63 &&
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > kSpinSeconds)
                return;
            __builtin_ia32_pause();
        }
    }

    void worker_loop() {
        uint64_t seen = 0;
        while (true) {
            spin_until([&] { return stopping_.load() || generation_.load() != seen; });
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
                if (stopping_) return;
                seen = generation_;
                ++active_;
            }
            take_pieces();
            std::lock_guard<std::mutex> lock(mutex_);
            if (--active_ == 0) idle_.notify_all();
        }
    }

    // Run pieces until the counter passes the end; report each finished piece.
    void take_pieces() {
        inside_task = true;
        while (true) {
            int64_t piece = next_piece_.fetch_add(1);
            if (piece >= pieces_) break;
            try {
                (*task_)(piece);
            } catch (...) {
                std::lock_guard<std::mutex> lock(mutex_);
                if (!error_) error_ = std::current_exception();
            }
            if (unfinished_.fetch_sub(1) == 1) {
                std::lock_guard<std::mutex> lock(mutex_);
                finished_.notify_all();
            }
        }
        inside_task = false;
    }

    std::vector<std::thread> workers_;
    std::mutex job_mutex_;
    std::mutex mutex_;
    std::condition_variable wake_, finished_, idle_;
    std::atomic<bool> stopping_{false};
    std::atomic<uint64_t> generation_{0};  // written under mutex_, read by spinning workers
    int active_ = 0;  // workers inside take_pieces()
    const std::function<void(int64_t)>* task_ = nullptr;
    int64_t pieces_ = 0;
    std::atomic<int64_t> next_piece_{0};
    std::atomic<int64_t> unfinished_{0};
    std::exception_ptr error_;
};

// The one pool, created with default_num_threads() workers on first use.
std::unique_ptr<ThreadPool>& pool_slot() {
    static std::unique_ptr<ThreadPool> instance;
    return instance;
}

ThreadPool& pool() {
    if (!pool_slot()) pool_slot() = std::make_unique<ThreadPool>(default_num_threads());
    return *pool_slot();
}

std::vector<ParallelCall>* g_parallel_log = nullptr;  // set by the scaling benchmark only

// Appends the call to the log while it is set (outermost calls only, from the thread
// that set it: the pieces of nested calls are inside the outer call's time).
struct LoggedCall {
    std::source_location where;
    int64_t pieces;
    std::chrono::steady_clock::time_point start;
    bool logging;
    LoggedCall(std::source_location where, int64_t pieces)
        : where(where), pieces(pieces), start(std::chrono::steady_clock::now()),
          logging(g_parallel_log && !inside_task) {}
    ~LoggedCall() {
        if (!logging) return;
        std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        g_parallel_log->push_back({where, pieces, took.count()});
    }
};

}  // namespace

void set_parallel_log(std::vector<ParallelCall>* log) { g_parallel_log = log; }

int default_num_threads() {
    if (const char* env = std::getenv("PF_THREADS")) {
        char* end = nullptr;
        errno = 0;
        long n = std::strtol(env, &end, 10);
        PF_CHECK(*env != '\0' && *end == '\0' && errno == 0 && n >= 1 && n <= kMaxThreads,
                 "PF_THREADS='{}': expected a whole number of threads in 1..{}", env, kMaxThreads);
        return int(n);
    }
    return int(std::clamp(std::thread::hardware_concurrency(), 1u, unsigned(kMaxThreads)));
}

int num_threads() { return pool().threads(); }

bool inside_parallel_region() { return inside_task; }

void set_num_threads(int n) {
    PF_CHECK(n >= 1 && n <= kMaxThreads, "{} threads: expected 1..{}", n, kMaxThreads);
    if (pool_slot() && pool_slot()->threads() == n) return;
    pool_slot().reset();
    pool_slot() = std::make_unique<ThreadPool>(n);
}

namespace {

// parallel_pieces without the log (parallel_for logs its own call).
void run_pieces(int64_t pieces, const std::function<void(int64_t)>& fn) {
    if (pieces == 1 || inside_task || num_threads() == 1) {
        TaskScope scope;
        for (int64_t p = 0; p < pieces; ++p) fn(p);
        return;
    }
    pool().run(pieces, fn);
}

}  // namespace

void parallel_pieces(int64_t pieces, const std::function<void(int64_t)>& fn,
                     std::source_location where) {
    if (pieces <= 0) return;
    LoggedCall logged(where, pieces);
    run_pieces(pieces, fn);
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn,
                  std::source_location where) {
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    LoggedCall logged(where, (n + grain - 1) / grain);
    int64_t pieces = std::min<int64_t>(num_threads(), (n + grain - 1) / grain);
    if (pieces <= 1 || inside_task) {
        TaskScope scope;
        fn(0, n);
        return;
    }
    // Equal contiguous pieces; the first n % pieces get one extra item.
    int64_t base = n / pieces, extra = n % pieces;
    run_pieces(pieces, [&](int64_t p) {
        int64_t begin = p * base + std::min(p, extra);
        int64_t end = begin + base + (p < extra ? 1 : 0);
        fn(begin, end);
    });
}

}  // namespace pf
