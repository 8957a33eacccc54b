// processes.cpp — MPI behind the Processes interface.
#include "tools/distributed/processes.h"

#include "engine/error.h"
#include "engine/thread_pool.h"

// Only the C interface: Open MPI's deprecated C++ bindings do not compile cleanly.
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

namespace pf::distributed {

namespace {

// Whether mpirun (Open MPI, or a PMI-based launcher) started this process.
bool launched_by_mpirun() {
    return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") ||
           std::getenv("PMIX_RANK");
}

constexpr int kSumTag = 1;
constexpr size_t kChunk = size_t(1) << 16;  // floats per message of the chain: 256 KiB

int count_of(size_t n) {
    PF_CHECK(n <= size_t(INT_MAX), "distributed: {} values are more than one MPI message holds", n);
    return int(n);
}

}  // namespace

Processes& Processes::world() {
    static Processes processes;
    return processes;
}

Processes::Processes() {
    if (!launched_by_mpirun()) return;
    int provided = 0;
    // Only the main thread calls MPI; the thread pool's workers never do.
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    mpi_ = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    // Processes on one machine share its cores: each takes its part, unless PF_THREADS
    // (or --threads, applied later) says otherwise.
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    int local_size = 1;
    MPI_Comm_size(local, &local_size);
    MPI_Comm_free(&local);
    if (!std::getenv("PF_THREADS"))  // then default_num_threads() is the number of cores
        set_num_threads(std::max(1, default_num_threads() / local_size));
}

// Rank r receives the running sum of ranks 0..r-1, adds its own values after it and
// passes it on; the last rank holds the total and broadcasts it. Chunked, so that the
// chain works as a pipeline: rank r adds chunk c while rank r - 1 sends chunk c + 1.
void Processes::sum_in_rank_order(std::vector<float>& values) const {
    if (size_ == 1) return;
    std::vector<float> before(std::min(kChunk, values.size()));
    for (size_t begin = 0; begin < values.size(); begin += kChunk) {
        const size_t n = std::min(kChunk, values.size() - begin);
        float* mine = values.data() + begin;
        if (rank_ > 0) {
            MPI_Recv(before.data(), count_of(n), MPI_FLOAT, rank_ - 1, kSumTag, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
            for (size_t i = 0; i < n; ++i) mine[i] = before[i] + mine[i];
        }
        if (rank_ < size_ - 1)
            MPI_Send(mine, count_of(n), MPI_FLOAT, rank_ + 1, kSumTag, MPI_COMM_WORLD);
    }
    MPI_Bcast(values.data(), count_of(values.size()), MPI_FLOAT, size_ - 1, MPI_COMM_WORLD);
}

void Processes::sum(std::vector<double>& values) const {
    if (size_ == 1) return;
    MPI_Allreduce(MPI_IN_PLACE, values.data(), count_of(values.size()), MPI_DOUBLE, MPI_SUM,
                  MPI_COMM_WORLD);
}

void Processes::sum(std::vector<int64_t>& values) const {
    if (size_ == 1) return;
    MPI_Allreduce(MPI_IN_PLACE, values.data(), count_of(values.size()), MPI_INT64_T, MPI_SUM,
                  MPI_COMM_WORLD);
}

void Processes::broadcast(std::string& bytes) const {
    if (size_ == 1) return;
    uint64_t size = bytes.size();
    MPI_Bcast(&size, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    bytes.resize(size);
    for (uint64_t begin = 0; begin < size; begin += INT_MAX)
        MPI_Bcast(bytes.data() + begin, int(std::min<uint64_t>(INT_MAX, size - begin)), MPI_CHAR, 0,
                  MPI_COMM_WORLD);
}

int Processes::finish(int exit_code) {
    if (!mpi_) return exit_code;
    mpi_ = false;
    if (exit_code == 0)
        MPI_Finalize();
    else
        MPI_Abort(MPI_COMM_WORLD, exit_code);
    return exit_code;
}

}  // namespace pf::distributed
