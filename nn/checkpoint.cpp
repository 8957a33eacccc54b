// checkpoint.cpp — the checkpoint format of checkpoint.h: a ByteWriter that serialises,
// a ByteReader that parses and checks every length against the bytes that remain, and
// the module/generator helpers. The file itself is read and written by engine/files.
#include "nn/checkpoint.h"

#include "engine/files.h"
#include "engine/ops.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <bit>
#include <cstring>
#include <set>
#include <vector>

namespace pf::nn {

static_assert(std::endian::native == std::endian::little,
              "the checkpoint format is little-endian and is read with memcpy");

namespace {

constexpr char kMagic[8] = {'P', 'F', 'C', 'K', 'P', 'T', '\r', '\n'};
constexpr size_t kFileSizeOffset = 12;  // where the u64 total size sits
constexpr size_t kHeaderBytes = 28;     // magic, version, size, step
constexpr size_t kChecksumBytes = 4;
// The smallest checkpoint: header, three zero counts, checksum.
constexpr size_t kMinimumBytes = kHeaderBytes + 3 * 8 + kChecksumBytes;

uint32_t crc32_of(const char* data, size_t size) {
    return uint32_t(crc32_z(0L, reinterpret_cast<const Bytef*>(data), size));
}

// ---- serialising ----------------------------------------------------------------------

class ByteWriter {
public:
    template <typename T>
    void put(T value) {  // a fixed-size integer or float, little-endian
        bytes_.append(reinterpret_cast<const char*>(&value), sizeof(T));
    }
    void put_string(const std::string& s) {
        put<uint64_t>(s.size());
        bytes_ += s;
    }
    void put_floats(const float* values, int64_t count) {
        bytes_.append(reinterpret_cast<const char*>(values), size_t(count) * sizeof(float));
    }
    template <typename T>
    void patch(size_t offset, T value) {
        std::memcpy(bytes_.data() + offset, &value, sizeof(T));
    }
    std::string& bytes() { return bytes_; }

private:
    std::string bytes_;
};

// ---- parsing --------------------------------------------------------------------------

// Reads fields from [begin, end) of a file's bytes; every read first checks that the
// bytes are there, so a corrupt length can never make us read past the end or
// allocate more than the file holds.
class ByteReader {
public:
    ByteReader(const std::string& bytes, size_t begin, size_t end, const std::string& file)
        : bytes_(bytes), pos_(begin), end_(end), file_(file) {}

    size_t remaining() const { return end_ - pos_; }
    size_t position() const { return pos_; }

    // Throws unless `count` more bytes remain for `what`.
    void need(uint64_t count, const std::string& what) const {
        PF_CHECK(count <= remaining(), "checkpoint {}: corrupt: {} at byte {} needs {} bytes, "
                 "only {} remain", file_, what, pos_, count, remaining());
    }
    template <typename T>
    T get(const std::string& what) {
        need(sizeof(T), what);
        T value;
        std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return value;
    }
    std::string get_string(const std::string& what) {
        uint64_t length = get<uint64_t>(what + " length");
        need(length, what);
        std::string s = bytes_.substr(pos_, length);
        pos_ += length;
        return s;
    }
    void get_floats(float* out, uint64_t count, const std::string& what) {
        need(count * sizeof(float), what);  // the caller checked count <= remaining / 4
        if (count > 0) std::memcpy(out, bytes_.data() + pos_, count * sizeof(float));
        pos_ += count * sizeof(float);
    }

private:
    const std::string& bytes_;
    size_t pos_, end_;
    const std::string& file_;
};

}  // namespace

// ---- Checkpoint -----------------------------------------------------------------------

std::string Checkpoint::describe() const {
    return path.empty() ? "checkpoint (in memory)" : "checkpoint " + path;
}

void Checkpoint::add_tensor(const std::string& name, const Tensor& value) {
    PF_CHECK(value.defined(), "{}: tensor {} is undefined", describe(), name);
    PF_CHECK(find_tensor(name) == nullptr, "{}: tensor {} added twice", describe(), name);
    NoGradGuard no_grad;
    tensors.emplace_back(name, clone(value.detach()));
}

const Tensor* Checkpoint::find_tensor(const std::string& name) const {
    for (const auto& [tensor_name, tensor] : tensors)
        if (tensor_name == name) return &tensor;
    return nullptr;
}

NamedTensors Checkpoint::with_prefix(const std::string& prefix) const {
    NamedTensors out;
    for (const auto& [name, tensor] : tensors)
        if (name.rfind(prefix, 0) == 0) out.emplace_back(name.substr(prefix.size()), tensor);
    return out;
}

const Tensor& Checkpoint::tensor(const std::string& name) const {
    const Tensor* found = find_tensor(name);
    PF_CHECK(found != nullptr, "{}: tensor {} is missing", describe(), name);
    return *found;
}

// ---- save -----------------------------------------------------------------------------

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
    ByteWriter out;
    out.bytes().append(kMagic, sizeof(kMagic));
    out.put<uint32_t>(kCheckpointVersion);
    out.put<uint64_t>(0);  // total size, patched below
    out.put<int64_t>(checkpoint.step);

    out.put<uint64_t>(checkpoint.config.size());
    for (const auto& [key, value] : checkpoint.config) {
        out.put_string(key);
        out.put_string(value);
    }
    out.put<uint64_t>(checkpoint.generators.size());
    for (const auto& [name, state] : checkpoint.generators) {
        out.put_string(name);
        out.put<uint64_t>(state.seed);
        out.put<uint64_t>(state.offset);
    }
    std::set<std::string> names;
    out.put<uint64_t>(checkpoint.tensors.size());
    for (const auto& [name, tensor] : checkpoint.tensors) {
        PF_CHECK(tensor.defined(), "cannot write {}: tensor {} is undefined", path, name);
        PF_CHECK(names.insert(name).second, "cannot write {}: two tensors are named {}", path,
                 name);
        out.put_string(name);
        out.put<uint32_t>(uint32_t(tensor.dim()));
        for (int64_t size : tensor.shape()) out.put<int64_t>(size);
        out.put_floats(tensor.data(), tensor.numel());
    }

    out.patch<uint64_t>(kFileSizeOffset, out.bytes().size() + kChecksumBytes);
    out.put<uint32_t>(crc32_of(out.bytes().data(), out.bytes().size()));
    write_file(path, out.bytes());
}

// ---- load -----------------------------------------------------------------------------

Checkpoint load_checkpoint(const std::string& path) { return parse_checkpoint(read_file(path), path); }

Checkpoint parse_checkpoint(const std::string& bytes, const std::string& path) {
    const size_t size = bytes.size();
    auto starts_with_magic = [&] {
        size_t n = std::min(size, sizeof(kMagic));
        return std::memcmp(bytes.data(), kMagic, n) == 0;
    };

    // Whole-file checks first, in the order that names the problem best.
    PF_CHECK(size > 0, "checkpoint {}: the file is empty", path);
    PF_CHECK(starts_with_magic(), "checkpoint {}: not a performer.cpp checkpoint (it does not "
             "start with the magic bytes PFCKPT)", path);
    PF_CHECK(size >= kMinimumBytes, "checkpoint {}: truncated: {} bytes, less than the {} of "
             "even an empty checkpoint", path, size, kMinimumBytes);
    ByteReader header(bytes, sizeof(kMagic), kHeaderBytes, path);
    uint32_t version = header.get<uint32_t>("version");
    PF_CHECK(version == kCheckpointVersion, "checkpoint {}: format version {}, but this program "
             "reads version {}", path, version, kCheckpointVersion);
    uint64_t declared_size = header.get<uint64_t>("file size");
    PF_CHECK(size >= declared_size, "checkpoint {}: truncated: {} bytes of the {} its header "
             "declares", path, size, declared_size);
    PF_CHECK(size == declared_size, "checkpoint {}: {} bytes, but its header declares {} "
             "(trailing bytes or a corrupt header)", path, size, declared_size);
    uint32_t stored_crc;
    std::memcpy(&stored_crc, bytes.data() + size - kChecksumBytes, sizeof(stored_crc));
    uint32_t computed_crc = crc32_of(bytes.data(), size - kChecksumBytes);
    PF_CHECK(stored_crc == computed_crc, "checkpoint {}: checksum mismatch (stored {:#010x}, "
             "computed {:#010x}): the file is corrupt", path, stored_crc, computed_crc);

    // The checksum holds, so what follows is what a writer wrote; still, every length
    // is checked, as a file can be crafted with a matching checksum.
    Checkpoint checkpoint;
    checkpoint.path = path;
    checkpoint.step = header.get<int64_t>("step");
    ByteReader in(bytes, kHeaderBytes, size - kChecksumBytes, path);

    uint64_t config_count = in.get<uint64_t>("config count");
    for (uint64_t i = 0; i < config_count; ++i) {
        std::string key = in.get_string("config key");
        std::string value = in.get_string(fmt::format("config value of '{}'", key));
        PF_CHECK(checkpoint.config.emplace(key, value).second,
                 "checkpoint {}: corrupt: config entry '{}' appears twice", path, key);
    }
    uint64_t generator_count = in.get<uint64_t>("generator count");
    for (uint64_t i = 0; i < generator_count; ++i) {
        std::string name = in.get_string("generator name");
        GeneratorState state;
        state.seed = in.get<uint64_t>(fmt::format("seed of generator '{}'", name));
        state.offset = in.get<uint64_t>(fmt::format("offset of generator '{}'", name));
        PF_CHECK(checkpoint.generators.emplace(name, state).second,
                 "checkpoint {}: corrupt: generator '{}' appears twice", path, name);
    }
    uint64_t tensor_count = in.get<uint64_t>("tensor count");
    std::set<std::string> names;
    for (uint64_t i = 0; i < tensor_count; ++i) {
        std::string name = in.get_string("tensor name");
        PF_CHECK(names.insert(name).second, "checkpoint {}: corrupt: tensor {} appears twice",
                 path, name);
        uint32_t rank = in.get<uint32_t>(fmt::format("rank of tensor {}", name));
        in.need(uint64_t(rank) * sizeof(int64_t), fmt::format("shape of tensor {}", name));
        Shape shape(rank);
        for (int64_t& axis_size : shape) {
            axis_size = in.get<int64_t>(fmt::format("shape of tensor {}", name));
            PF_CHECK(axis_size >= 0, "checkpoint {}: corrupt: tensor {} has a negative size {}",
                     path, name, axis_size);
        }
        // numel <= remaining bytes / 4, checked axis by axis so the product cannot overflow.
        uint64_t max_count = in.remaining() / sizeof(float), count = 1;
        for (int64_t axis_size : shape) {
            PF_CHECK(axis_size == 0 || count <= max_count / uint64_t(axis_size),
                     "checkpoint {}: corrupt: tensor {} of shape {} needs more than the {} bytes "
                     "that remain", path, name, shape_str(shape), in.remaining());
            count *= uint64_t(axis_size);
        }
        Tensor tensor = Tensor::empty(shape);
        in.get_floats(tensor.mutable_data(), count, fmt::format("values of tensor {}", name));
        checkpoint.tensors.emplace_back(std::move(name), std::move(tensor));
    }
    PF_CHECK(in.remaining() == 0, "checkpoint {}: corrupt: {} unexpected bytes after the last "
             "tensor", path, in.remaining());
    return checkpoint;
}

// ---- modules and generators -----------------------------------------------------------

void store_module(Checkpoint& checkpoint, const std::string& prefix, const Module& module) {
    for (const auto& [name, tensor] : module.named_parameters())
        checkpoint.add_tensor(prefix + name, tensor);
    for (const auto& [name, tensor] : module.named_buffers())
        checkpoint.add_tensor(prefix + name, tensor);
}

void restore_module(const Checkpoint& checkpoint, const std::string& prefix, Module& module,
                    Restore what) {
    NamedTensors targets = module.named_parameters();
    if (what == Restore::Everything)
        for (auto& named : module.named_buffers()) targets.push_back(named);

    // Check everything before copying anything, so that a failed restore changes nothing.
    std::set<std::string> expected;
    std::vector<const Tensor*> sources;
    for (const auto& [name, target] : targets) {
        std::string full_name = prefix + name;
        expected.insert(full_name);
        const Tensor* source = checkpoint.find_tensor(full_name);
        PF_CHECK(source != nullptr, "{}: tensor {} is missing (the model expects shape {})",
                 checkpoint.describe(), full_name, shape_str(target.shape()));
        PF_CHECK(source->shape() == target.shape(), "{}: tensor {} has shape {}, the model "
                 "expects {}", checkpoint.describe(), full_name, shape_str(source->shape()),
                 shape_str(target.shape()));
        sources.push_back(source);
    }
    for (const auto& [name, tensor] : checkpoint.tensors)
        PF_CHECK(what == Restore::ParametersOnly || name.rfind(prefix, 0) != 0 || expected.count(name),
                 "{}: tensor {} is not part of the model (a model of another shape?)",
                 checkpoint.describe(), name);

    for (size_t i = 0; i < targets.size(); ++i)
        std::copy_n(sources[i]->data(), sources[i]->numel(), targets[i].second.mutable_data());
}

void store_generator(Checkpoint& checkpoint, const std::string& name, const Generator& gen) {
    checkpoint.generators[name] = {gen.seed(), gen.offset()};
}

void restore_generator(const Checkpoint& checkpoint, const std::string& name, Generator& gen) {
    auto it = checkpoint.generators.find(name);
    PF_CHECK(it != checkpoint.generators.end(), "{}: generator '{}' is missing",
             checkpoint.describe(), name);
    gen.set_state(it->second.seed, it->second.offset);
}

}  // namespace pf::nn
