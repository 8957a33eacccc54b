// images.cpp — IDX and PNG loading, crop and resize, tokens, PNG writing.
#include "tools/data/images.h"

#include "engine/error.h"
#include "engine/files.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

namespace pf::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
constexpr int64_t kImagenetSize = 64;
constexpr double kHeldOutFraction = 0.05;  // of a plain PNG folder, used as test
constexpr uint8_t kGridBackground = 255;
// The most pixels a PNG may have, from its header, before it is decoded: 4096 x 4096,
// 48 MiB as RGB. The task keeps a 64x64 crop, so a larger image would be shrunk more
// than 64 times in each direction, and a small file can claim a huge image (26000 x
// 26000 in 657 KB of zeros: 2 GB decoded). Under this bound one image decodes in well
// under the memory of any machine the programs run on.
constexpr int64_t kMaxPngSide = 4096;
constexpr int64_t kMaxPngPixels = kMaxPngSide * kMaxPngSide;

// ---- IDX ---------------------------------------------------------------------

uint32_t read_big_endian(const std::string& bytes, size_t at) {
    auto byte = [&](size_t k) { return uint32_t(uint8_t(bytes[at + k])); };
    return byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
}

// Checks an IDX file of unsigned bytes: its magic number (0x00000800 + number of
// dimensions), its sizes, and that exactly their product of data bytes follows.
// Returns the sizes; the data starts at 4 + 4 * dimensions.
std::vector<int64_t> check_idx(const std::string& bytes, const std::string& path,
                               uint32_t expected_magic, const char* what) {
    const size_t dimensions = expected_magic & 0xff;
    const size_t header = 4 + 4 * dimensions;
    PF_CHECK(bytes.size() >= 4, "{}: not an IDX file: only {} bytes", path, bytes.size());
    uint32_t magic = read_big_endian(bytes, 0);
    PF_CHECK(magic == expected_magic,
             "{}: not an IDX {} file: magic number 0x{:08x}, expected 0x{:08x}", path, what, magic,
             expected_magic);
    PF_CHECK(bytes.size() >= header,
             "{}: truncated: the IDX header needs {} bytes, the file has {}", path, header,
             bytes.size());
    std::vector<int64_t> sizes;
    double expected_data = 1;  // a double cannot overflow; exact below 2^53
    for (size_t k = 0; k < dimensions; ++k) {
        sizes.push_back(read_big_endian(bytes, 4 + 4 * k));
        expected_data *= double(sizes.back());
    }
    double data = double(bytes.size() - header);
    PF_CHECK(data >= expected_data,
             "{}: truncated: the header promises {:.0f} bytes of {}, the file has {}", path,
             expected_data, what, bytes.size() - header);
    PF_CHECK(data == expected_data, "{}: {:.0f} unexpected bytes after the {} the header describes",
             path, data - expected_data, what);
    return sizes;
}

void keep_first(ImageSet& set, int64_t limit) {
    if (limit <= 0 || limit >= set.count) return;
    set.count = limit;
    set.pixels.resize(size_t(limit * set.image_size()));
    if (!set.labels.empty()) set.labels.resize(size_t(limit));
}

// ---- PNG folders -------------------------------------------------------------

std::vector<fs::path> list_png_files(const std::string& dir) {
    PF_CHECK(fs::is_directory(dir), "{}: not a directory", dir);
    std::vector<fs::path> files;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
        std::string extension = entry.path().extension().string();
        std::transform(extension.begin(), extension.end(), extension.begin(),
                       [](unsigned char c) { return char(std::tolower(c)); });
        if (extension == ".png" && entry.is_regular_file()) files.push_back(entry.path());
    }
    PF_CHECK(!files.empty(), "{}: no .png files in this folder", dir);
    std::sort(files.begin(), files.end());
    return files;
}

// One output sample of a 1-D resampling: the sum over k of weights[k] * input[first + k].
struct Taps {
    int64_t first = 0;
    std::vector<float> weights;
};

// How each of n_out samples is made from n_in. Shrinking: the average of the input
// interval [o s, (o + 1) s), s = n_in / n_out, with partly covered pixels weighted by
// their overlap. Enlarging: linear interpolation between the two nearest pixel centres
// (centres are at i + 0.5 in both grids).
std::vector<Taps> resampling_taps(int64_t n_in, int64_t n_out) {
    std::vector<Taps> all(static_cast<size_t>(n_out));
    const double scale = double(n_in) / double(n_out);
    for (int64_t o = 0; o < n_out; ++o) {
        Taps& taps = all[size_t(o)];
        if (scale >= 1) {
            double low = double(o) * scale, high = low + scale;
            taps.first = int64_t(std::floor(low));
            int64_t end = std::min<int64_t>(n_in, int64_t(std::ceil(high)));
            for (int64_t i = taps.first; i < end; ++i) {
                double overlap = std::min(high, double(i + 1)) - std::max(low, double(i));
                taps.weights.push_back(float(std::max(overlap, 0.0) / scale));
            }
        } else {
            double x = std::clamp((double(o) + 0.5) * scale - 0.5, 0.0, double(n_in - 1));
            taps.first = int64_t(std::floor(x));
            double fraction = x - double(taps.first);
            taps.weights = {float(1 - fraction)};
            if (taps.first + 1 < n_in) taps.weights.push_back(float(fraction));
        }
    }
    return all;
}

// The centred side x side square of an RGB image (width x height), resized to
// size x size, into out (size * size * 3 bytes). Rows are resampled, then columns.
void crop_and_resize(const uint8_t* rgb, int64_t width, int64_t height, int64_t size,
                     uint8_t* out) {
    const int64_t side = std::min(width, height);
    const int64_t left = (width - side) / 2, top = (height - side) / 2;
    const std::vector<Taps> taps = resampling_taps(side, size);

    // Horizontal pass over the square's rows: (side, size, 3) floats.
    std::vector<float> rows(size_t(side * size * 3), 0.0f);
    for (int64_t r = 0; r < side; ++r) {
        const uint8_t* source = rgb + ((top + r) * width + left) * 3;
        float* row = rows.data() + r * size * 3;
        for (int64_t c = 0; c < size; ++c) {
            const Taps& tap = taps[size_t(c)];
            for (size_t k = 0; k < tap.weights.size(); ++k)
                for (int64_t ch = 0; ch < 3; ++ch)
                    row[c * 3 + ch] += tap.weights[k] * float(source[(tap.first + k) * 3 + ch]);
        }
    }
    // Vertical pass: (size, size, 3), rounded back to bytes; i = c * 3 + ch.
    for (int64_t r = 0; r < size; ++r) {
        const Taps& tap = taps[size_t(r)];
        for (int64_t i = 0; i < size * 3; ++i) {
            float value = 0;
            for (size_t k = 0; k < tap.weights.size(); ++k)
                value += tap.weights[k] * rows[(tap.first + k) * size * 3 + i];
            out[r * size * 3 + i] = uint8_t(std::clamp(std::lround(value), 0L, 255L));
        }
    }
}

ImageSet load_png_files(const std::vector<fs::path>& files, int64_t size) {
    ImageSet set;
    set.count = int64_t(files.size());
    set.height = set.width = size;
    set.channels = 3;
    set.pixels.resize(size_t(set.count * set.image_size()));
    for (size_t i = 0; i < files.size(); ++i) {
        const std::string path = files[i].string();
        const std::string bytes = read_file(path);
        int width = 0, height = 0, channels_in_file = 0;
        const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
        PF_CHECK(bytes.size() <= size_t(INT32_MAX), "{}: {} bytes: too large for an image", path,
                 bytes.size());
        // The header first: the size it claims decides whether the pixels are decoded.
        PF_CHECK(stbi_info_from_memory(data, int(bytes.size()), &width, &height, &channels_in_file),
                 "{}: cannot decode the image: {}", path, stbi_failure_reason());
        PF_CHECK(int64_t(width) * height <= kMaxPngPixels,
                 "{}: the header says {}x{} pixels, more than the {}x{} ({} pixels) an image may "
                 "have here", path, width, height, kMaxPngSide, kMaxPngSide, kMaxPngPixels);
        uint8_t* rgb = stbi_load_from_memory(data, int(bytes.size()), &width, &height,
                                             &channels_in_file, 3);
        PF_CHECK(rgb != nullptr, "{}: cannot decode the image: {}", path, stbi_failure_reason());
        crop_and_resize(rgb, width, height, size,
                        set.pixels.data() + int64_t(i) * set.image_size());
        stbi_image_free(rgb);
    }
    return set;
}

}  // namespace

ImageSet read_idx_images(const std::string& images_path, const std::string& labels_path) {
    const std::string bytes = read_file(images_path);
    std::vector<int64_t> sizes = check_idx(bytes, images_path, 0x00000803, "images");
    // An empty set would leave nothing to draw a batch from.
    PF_CHECK(sizes[0] > 0, "{}: the IDX header says it holds no images", images_path);
    PF_CHECK(sizes[1] > 0 && sizes[2] > 0, "{}: images of {}x{} pixels hold nothing", images_path,
             sizes[1], sizes[2]);
    ImageSet set;
    set.count = sizes[0];
    set.height = sizes[1];
    set.width = sizes[2];
    set.channels = 1;
    set.pixels.assign(bytes.begin() + 16, bytes.end());
    if (!labels_path.empty()) {
        const std::string label_bytes = read_file(labels_path);
        int64_t label_count = check_idx(label_bytes, labels_path, 0x00000801, "labels")[0];
        PF_CHECK(label_count == set.count, "{}: {} labels, but {} has {} images", labels_path,
                 label_count, images_path, set.count);
        for (size_t i = 8; i < label_bytes.size(); ++i)
            set.labels.push_back(uint8_t(label_bytes[i]));
    }
    return set;
}

ImageSet load_png_folder(const std::string& dir, int64_t size, int64_t limit) {
    PF_CHECK(size > 0, "load_png_folder: size must be positive, got {}", size);
    std::vector<fs::path> files = list_png_files(dir);
    if (limit > 0 && int64_t(files.size()) > limit) files.resize(size_t(limit));
    return load_png_files(files, size);
}

ImageSet load_image_dataset(const std::string& spec, const std::string& split, int64_t limit) {
    PF_CHECK(split == "train" || split == "test" || split == "valid",
             "image data: unknown split '{}' (use train or test)", split);
    const bool train = split == "train";
    const size_t colon = spec.find(':');
    const std::string kind = spec.substr(0, colon);
    const std::string dir = colon == std::string::npos ? "" : spec.substr(colon + 1);

    if (kind.empty() || kind == "fashion-mnist") {
        fs::path folder = dir.empty() ? kFashionMnistDir : dir;
        const std::string prefix = train ? "train" : "t10k";
        // The gzipped files as distributed, or the same files unpacked.
        auto find = [&](const std::string& name) {
            fs::path gz = folder / (name + ".gz");
            PF_CHECK(fs::exists(gz) || fs::exists(folder / name),
                     "{}: not found (Fashion-MNIST comes with the Debian package "
                     "dataset-fashion-mnist; `make data` installs it)",
                     gz.string());
            return fs::exists(gz) ? gz.string() : (folder / name).string();
        };
        const std::string images_path = find(prefix + "-images-idx3-ubyte");
        const std::string labels_path = find(prefix + "-labels-idx1-ubyte");
        ImageSet set = read_idx_images(images_path, labels_path);
        keep_first(set, limit);
        return set;
    }
    if (kind == "imagenet64") {
        PF_CHECK(!dir.empty(), "image data '{}': give the folder as imagenet64:DIR", spec);
        fs::path train_dir = fs::path(dir) / "train_64x64",
                 valid_dir = fs::path(dir) / "valid_64x64";
        if (fs::is_directory(train_dir) && fs::is_directory(valid_dir))
            return load_png_folder((train ? train_dir : valid_dir).string(), kImagenetSize, limit);
        // One folder: the last 5% of the files (by name) are the test split.
        std::vector<fs::path> files = list_png_files(dir);
        const int64_t n = int64_t(files.size());
        const int64_t n_test = std::max<int64_t>(1, std::llround(double(n) * kHeldOutFraction));
        PF_CHECK(n > n_test, "{}: {} PNG file(s) are too few to hold out a test split", dir, n);
        std::vector<fs::path> part(train ? files.begin() : files.end() - n_test,
                                   train ? files.end() - n_test : files.end());
        if (limit > 0 && int64_t(part.size()) > limit) part.resize(size_t(limit));
        return load_png_files(part, kImagenetSize);
    }
    throw Error(
        fmt::format("unknown image data set '{}' (use fashion-mnist, fashion-mnist:DIR "
                    "or imagenet64:DIR)",
                    spec));
}

std::vector<int32_t> image_to_tokens(const ImageSet& images, int64_t index) {
    PF_CHECK(index >= 0 && index < images.count, "image_to_tokens: index {} outside 0..{}", index,
             images.count - 1);
    // The storage order is the raster order: a token is a pixel byte.
    const uint8_t* pixels = images.image(index);
    return std::vector<int32_t>(pixels, pixels + images.image_size());
}

void tokens_to_image(const std::vector<int32_t>& tokens, int64_t height, int64_t width,
                     int64_t channels, uint8_t* out) {
    PF_CHECK(int64_t(tokens.size()) == height * width * channels,
             "tokens_to_image: {} tokens for a {}x{}x{} image", tokens.size(), height, width,
             channels);
    for (size_t i = 0; i < tokens.size(); ++i) {
        PF_CHECK(tokens[i] >= 0 && tokens[i] <= 255, "tokens_to_image: token {} is {}, not a byte",
                 i, tokens[i]);
        out[i] = uint8_t(tokens[i]);
    }
}

void write_png(const std::string& path, const uint8_t* pixels, int64_t width, int64_t height,
               int64_t channels) {
    PF_CHECK(width > 0 && height > 0 && channels >= 1 && channels <= 4,
             "{}: cannot write a PNG of {}x{} pixels with {} channels", path, width, height,
             channels);
    std::string png;
    auto append = [](void* context, void* data, int size) {
        static_cast<std::string*>(context)->append(static_cast<const char*>(data), size_t(size));
    };
    int ok = stbi_write_png_to_func(append, &png, int(width), int(height), int(channels), pixels,
                                    int(width * channels));
    PF_CHECK(ok != 0, "{}: PNG encoding failed", path);
    write_file(path, png);
}

void write_image_grid(const std::string& path, const std::vector<std::vector<uint8_t>>& images,
                      int64_t height, int64_t width, int64_t channels, int64_t columns,
                      int64_t scale, int64_t gap) {
    PF_CHECK(!images.empty(), "{}: no images to put in the grid", path);
    PF_CHECK(columns > 0 && scale > 0 && gap >= 0,
             "{}: grid needs columns > 0, scale > 0, gap >= 0; got {}, {}, {}", path, columns,
             scale, gap);
    const int64_t count = int64_t(images.size());
    const int64_t grid_columns = std::min(columns, count);
    const int64_t grid_rows = (count + columns - 1) / columns;
    const int64_t cell_width = width * scale + gap, cell_height = height * scale + gap;
    const int64_t grid_width = gap + grid_columns * cell_width;
    const int64_t grid_height = gap + grid_rows * cell_height;

    std::vector<uint8_t> grid(size_t(grid_width * grid_height * channels), kGridBackground);
    for (int64_t i = 0; i < count; ++i) {
        const std::vector<uint8_t>& image = images[size_t(i)];
        PF_CHECK(int64_t(image.size()) == height * width * channels,
                 "{}: image {} has {} bytes, expected {}x{}x{}", path, i, image.size(), height,
                 width, channels);
        const int64_t top = gap + (i / columns) * cell_height,
                      left = gap + (i % columns) * cell_width;
        for (int64_t y = 0; y < height * scale; ++y)
            for (int64_t x = 0; x < width * scale; ++x)
                std::copy_n(&image[size_t(((y / scale) * width + x / scale) * channels)], channels,
                            &grid[size_t(((top + y) * grid_width + left + x) * channels)]);
    }
    write_png(path, grid.data(), grid_width, grid_height, channels);
}

}  // namespace pf::data
