// checkpoint.h — saving and loading training state: model parameters and buffers,
// optimizer state, the step, generator states and the run's configuration, in one
// binary file that is written atomically and checked when read.
//
//   Checkpoint ckpt;
//   ckpt.config["task"] = "text";
//   ckpt.config["layers"] = "4";
//   ckpt.step = step;
//   store_module(ckpt, "model.", model);                  // parameters and buffers
//   for (auto& [name, t] : optimizer.state()) ckpt.add_tensor("optim." + name, t);
//   store_generator(ckpt, "data", data_gen);
//   save_checkpoint("run/model.ckpt", ckpt);              // temp file, fsync, rename
//
//   Checkpoint loaded = load_checkpoint("run/model.ckpt");  // throws pf::Error if bad
//   restore_module(loaded, "model.", model);                // copies values in place
//   optimizer.load_state(loaded.with_prefix("optim."));     // names without "optim."
//   restore_generator(loaded, "data", data_gen);
//
// A crash while saving leaves the previous file as it was; a truncated, corrupted
// or foreign file is rejected with a message naming the file and the problem.
//
// File layout (format version 1). Integers and floats are little-endian.
//
//   offset  bytes  field
//   0       8      magic "PFCKPT\r\n" (the \r\n, as in PNG, exposes text-mode mangling)
//   8       4      format version, u32 (= kCheckpointVersion)
//   12      8      total file size in bytes, u64 (tells truncation from corruption)
//   20      8      step, i64
//   28             config:     u64 count, then count x (string key, string value)
//                  generators: u64 count, then count x (string name, u64 seed, u64 offset)
//                  tensors:    u64 count, then count x (string name, u32 rank,
//                                                       rank x i64 size, numel x f32 value)
//   size-4  4      CRC-32 (zlib's crc32) of every byte before it
//
//   string = u64 byte count, then the bytes (UTF-8, no terminator)
#pragma once

#include "engine/random.h"
#include "nn/module.h"

#include <cstdint>
#include <map>
#include <string>

namespace pf::nn {

inline constexpr uint32_t kCheckpointVersion = 1;

// A pf::Generator's whole state (see engine/random.h).
struct GeneratorState {
    uint64_t seed = 0;
    uint64_t offset = 0;
    bool operator==(const GeneratorState&) const = default;
};

struct Checkpoint {
    std::map<std::string, std::string> config;  // e.g. "task" -> "text", "layers" -> "4"
    NamedTensors tensors;  // names carry the caller's prefix: "model.", "optim.", ...
    int64_t step = 0;
    std::map<std::string, GeneratorState> generators;
    // The file it was loaded from ("" if built in memory); error messages name it.
    std::string path;

    // Adds a copy of `value` (later changes to value do not reach the checkpoint).
    // Throws pf::Error if the name is taken.
    void add_tensor(const std::string& name, const Tensor& value);
    const Tensor* find_tensor(const std::string& name) const;  // nullptr if absent
    // The tensors whose names start with prefix, with the prefix cut off: e.g.
    // with_prefix("optim.") gives "m.head.weight", ... for AdamW::load_state.
    NamedTensors with_prefix(const std::string& prefix) const;
    const Tensor& tensor(const std::string& name) const;        // throws if absent
    // "checkpoint run/model.ckpt" (or "checkpoint (in memory)"): how errors start.
    std::string describe() const;
};

// Serialises (the layout above) and writes atomically (pf::write_file). Throws pf::Error on an
// undefined tensor, a duplicate tensor name, or a failed write.
void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);

// Reads and validates a checkpoint. A missing or unreadable file, one that is not a
// regular file (a FIFO would block forever, so it is refused before opening), a truncated file,
// bad magic bytes, another format version, a checksum mismatch or inconsistent sizes
// inside each throw pf::Error naming the file and the problem. Lengths are checked
// against the bytes remaining before anything is allocated.
Checkpoint load_checkpoint(const std::string& path);
// The same for a checkpoint's bytes read elsewhere (e.g. received from another process);
// `path` names them in errors.
Checkpoint parse_checkpoint(const std::string& bytes, const std::string& path);

// Adds copies of module's parameters and buffers as prefix + name, e.g. with prefix
// "model.": "model.blocks.0.attn.q.weight".
void store_module(Checkpoint& checkpoint, const std::string& prefix, const Module& module);

// Copies the checkpoint's prefix + name tensors into module's existing parameters and
// buffers, in place. Throws pf::Error naming the tensor if one is missing, has another
// shape, or if a tensor under the prefix belongs to no parameter or buffer (a model of
// another shape); the module is unchanged on error. Tensors under other prefixes are
// ignored (with an empty prefix, every tensor must belong to the module).
// ParametersOnly copies the parameters alone and ignores the checkpoint's other tensors
// under the prefix: e.g. trained weights into a model with another attention mechanism,
// whose random features are its own.
enum class Restore { Everything, ParametersOnly };
void restore_module(const Checkpoint& checkpoint, const std::string& prefix, Module& module,
                    Restore what = Restore::Everything);

// Generator states by name: store, and restore (throws pf::Error if absent).
void store_generator(Checkpoint& checkpoint, const std::string& name, const Generator& gen);
void restore_generator(const Checkpoint& checkpoint, const std::string& name, Generator& gen);

}  // namespace pf::nn
