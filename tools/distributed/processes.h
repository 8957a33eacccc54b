// processes.h — the processes of one training run, over MPI: the only file that knows MPI.
//
//   mpirun -np 2 build/train ...     # two processes, each with a replica of the model
//   build/train ...                  # one process, no MPI at all
//
//   Processes& world = Processes::world();
//   world.rank(), world.size()              // 0..N-1, N (0 and 1 without mpirun)
//   world.sum_in_rank_order(gradients);     // every process gets g_0 + g_1 + ... + g_(N-1)
//
// Data-parallel training (tools/distributed/data_parallel.h, used by the trainer): every
// process draws the same global batch and works on its rows; the gradients are summed
// here; every process then takes the same optimizer step, so the replicas stay identical.
//
// MPI is started only when the program was launched by mpirun (OMPI_COMM_WORLD_SIZE,
// PMI_SIZE or PMIX_RANK set): otherwise nothing of MPI runs. The sum adds the processes'
// values in rank order, ((g_0 + g_1) + g_2) + ..., whatever the network: the same
// float32 result, bit for bit, as one process adding the same parts one after another
// (--micro-batches N). MPI's own all-reduce picks its order by message size and process
// count, which would make that equality a matter of luck.
//
// A process that fails calls abort(): MPI then stops every process of the run (mpirun
// prints which one failed). Without this, the others would wait for it forever.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pf::distributed {

class Processes {
public:
    // The run's processes; starts MPI on first use if launched by mpirun.
    static Processes& world();

    int rank() const { return rank_; }
    int size() const { return size_; }
    bool leader() const { return rank_ == 0; }  // the one that writes files and prints

    // Element-wise sum over the processes, in rank order, the result in every process.
    void sum_in_rank_order(std::vector<float>& values) const;
    // Element-wise sums of doubles holding one process's value and zeros elsewhere, and
    // of counts: exact whatever the order.
    void sum(std::vector<double>& values) const;
    void sum(std::vector<int64_t>& values) const;
    // The leader's bytes, in every process.
    void broadcast(std::string& bytes) const;

    // The end of the program: MPI_Finalize after success, else MPI_Abort with `exit_code`
    // (which stops the other processes). Returns exit_code.
    int finish(int exit_code);

private:
    Processes();
    int rank_ = 0, size_ = 1;
    bool mpi_ = false;
};

}  // namespace pf::distributed
