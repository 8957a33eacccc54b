// images.h — image data sets, raster-order tokens, and writing PNG files.
//
//   ImageSet train = load_image_dataset("fashion-mnist", "train");   // 60000 x 28x28x1
//   ImageSet small = load_image_dataset("imagenet64:/data/imagenet64", "test", 1000);
//   std::vector<int32_t> tokens = image_to_tokens(train, 0);          // 784 values 0..255
//   write_image_grid("results/samples.png", images, 28, 28, 1, /*columns=*/8, /*scale=*/3);
//
// Pixels are bytes, stored row-major with channels last: pixel (r, c), channel ch of
// image i is pixels[((i * H + r) * W + c) * C + ch]. An autoregressive pixel model reads
// an image as H * W * C tokens in exactly that (raster) order, one byte value each.
//
// Data set specs for load_image_dataset:
//   "" or "fashion-mnist"   Fashion-MNIST from the Debian package dataset-fashion-mnist
//                           (/usr/share/datasets/fashion-mnist), split "train" or "test";
//   "fashion-mnist:DIR"     the same four IDX files (gzipped or not) in DIR;
//   "imagenet64:DIR"        PNG images as 64x64 RGB: DIR/train_64x64 and DIR/valid_64x64
//                           if both exist (the downsampled-ImageNet layout; "test" reads
//                           valid), else the PNGs in DIR itself with the last 5% by name
//                           as the test split.
// Split "valid" means "test" everywhere. `limit` > 0 keeps only the first `limit` images.
// A PNG's size is read from its header before it is decoded: one of more than 4096 x
// 4096 pixels is refused. Every error (missing file, bad magic number, truncated data,
// undecodable or oversized PNG) throws pf::Error naming the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pf::data {

struct ImageSet {
    int64_t count = 0, height = 0, width = 0, channels = 0;
    std::vector<uint8_t> pixels;  // (count, height, width, channels), row-major
    std::vector<int32_t> labels;  // count class labels, or empty when there are none

    int64_t image_size() const { return height * width * channels; }  // bytes per image
    const uint8_t* image(int64_t index) const { return pixels.data() + index * image_size(); }
};

// IDX files (plain or gzipped) of unsigned bytes: images have magic 0x00000803 and
// sizes N x H x W (N, H, W > 0: an empty set is refused); labels magic 0x00000801 and
// size N. Gives channels = 1.
ImageSet read_idx_images(const std::string& images_path, const std::string& labels_path = "");

// Every *.png in `dir`, sorted by file name (the first `limit` if limit > 0), as RGB
// (grey and alpha are converted), centre-cropped to a square and resized to size x size:
// averaging the covered area when shrinking, bilinear interpolation when enlarging.
ImageSet load_png_folder(const std::string& dir, int64_t size, int64_t limit = 0);

// A data set by name, see the top of this file. split: "train", "test" or "valid".
ImageSet load_image_dataset(const std::string& spec, const std::string& split, int64_t limit = 0);

// Image `index` as H * W * C tokens in raster order: token (r * W + c) * C + ch is
// that pixel's channel value, 0..255.
std::vector<int32_t> image_to_tokens(const ImageSet& images, int64_t index);

// The inverse: H * W * C tokens, each 0..255, into out (H * W * C bytes).
void tokens_to_image(const std::vector<int32_t>& tokens, int64_t height, int64_t width,
                     int64_t channels, uint8_t* out);

// A PNG of width x height pixels with 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA)
// channels, rows top to bottom. Written to PATH.tmp and renamed over PATH.
void write_png(const std::string& path, const uint8_t* pixels, int64_t width, int64_t height,
               int64_t channels);

// Tiles images of H x W x C bytes into a grid `columns` wide, row by row. Each image is
// scaled up `scale` times (nearest neighbour, so small images stay crisp) and framed by
// `gap` white pixels: the PNG is gap + k (W scale + gap) wide and gap + rows (H scale + gap)
// high, with k = min(columns, count) and rows = ceil(count / columns).
void write_image_grid(const std::string& path, const std::vector<std::vector<uint8_t>>& images,
                      int64_t height, int64_t width, int64_t channels, int64_t columns,
                      int64_t scale = 1, int64_t gap = 2);

}  // namespace pf::data
