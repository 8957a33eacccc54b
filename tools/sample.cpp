// sample.cpp — generate from a trained causal model, with recurrent decoding.
//
//   build/sample --ckpt runs/austen/model.ckpt --prompt "It is a truth" --n 400
//   build/sample --ckpt runs/fmnist/model.ckpt --n 16 --out results/samples.png
//   build/sample --ckpt runs/fmnist/model.ckpt --complete 8 --out results/completions.png
//   build/sample --ckpt runs/protein/model.ckpt --n 5          # FASTA on stdout
//
// Text goes to stdout; images to a PNG grid; proteins as FASTA. --complete N takes N
// test images, keeps their top half and samples the bottom half (a second grid shows
// originals above completions). The decoding speed (tokens/s) goes to stderr.
//
// Text can be of any length: past the length the model was trained on, decoding goes
// on in a sliding window (models/generate.h explains it). --n is at most a million
// bytes of text, or 1024 images or proteins.
#include "models/generate.h"
#include "tools/data/fasta.h"
#include "tools/data/images.h"
#include "tools/training/trainer.h"
#include "tools/util/cli.h"
#include "tools/util/timing.h"

#include <fmt/format.h>

#include <filesystem>

using namespace pf;

namespace {

// The most --n accepts: a million bytes of text (minutes for a small model); images and
// proteins are generated as one batch, so at most kMaxBatch of them.
constexpr int64_t kMaxCount = 1'000'000;
constexpr int64_t kMaxBatch = 1024;

std::vector<uint8_t> to_pixels(const std::vector<int32_t>& tokens, int64_t H, int64_t W, int64_t C) {
    std::vector<uint8_t> pixels(H * W * C);
    data::tokens_to_image(tokens, H, W, C, pixels.data());
    return pixels;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Generate text, images or proteins from a trained causal model", "sample"};
    std::string checkpoint, prompt, out = "results/samples.png";
    int64_t n = -1, complete = 0;
    float temperature = 1.0f;
    uint64_t seed = 0;
    app.add_option("--ckpt", checkpoint, "model checkpoint (model.ckpt of a run)")->required();
    app.add_option("--prompt", prompt, "text: what to continue (default: a newline)");
    app.add_option("--n", n, "text: bytes to generate (default 400); images and proteins: how "
                             "many (default 16 and 5)")->check(in_range(int64_t(1), kMaxCount));
    app.add_option("--temperature", temperature, "sampling temperature; 0 takes the most likely")
        ->check(non_negative());  // NaN and inf: refused by run_program
    app.add_option("--complete", complete, "images: complete the bottom half of N test images")
        ->check(positive());
    app.add_option("--out", out, "images: the PNG grid to write");
    app.add_option("--seed", seed, "random seed");
    add_threads_option(app);
    return run_program(app, argc, argv, [&] {
        Generator dropout(0), gen(seed);
        training::LoadedModel loaded = training::load_model(checkpoint, dropout);
        const models::SequenceModel& model = *loaded.model;
        const models::ModelConfig& config = model.config();
        PF_CHECK(config.causal(), "{} is a masked (bidirectional) model: it does not generate",
                 checkpoint);
        const std::string task = loaded.task.task;
        double start = now_seconds();
        int64_t generated = 0;

        if (task == "text") {
            if (n < 0) n = 400;
            std::string text = prompt.empty() ? "\n" : prompt;
            std::vector<int32_t> tokens(text.begin(), text.end());
            for (int32_t& t : tokens) t = int32_t(uint8_t(t));
            std::vector<int32_t> row = models::generate(model, {tokens}, n, temperature, gen)[0];
            std::string output;
            for (int32_t t : row) output.push_back(char(uint8_t(t)));
            fmt::print("{}\n", output);
            generated = n;
        } else if (task == "protein") {
            if (n < 0) n = 5;
            PF_CHECK(n <= kMaxBatch, "--n {}: at most {} proteins at a time", n, kMaxBatch);
            std::vector<std::vector<int32_t>> prompts(n, {data::protein::kBos});
            auto rows = models::generate(model, prompts, config.max_length - 1, temperature, gen);
            for (int64_t i = 0; i < n; ++i) {
                std::string sequence;
                for (size_t t = 1; t < rows[i].size(); ++t) {
                    if (rows[i][t] == data::protein::kEos || !data::protein::is_residue(rows[i][t])) break;
                    sequence.push_back(data::protein::decode(rows[i][t]));
                }
                fmt::print(">sample_{} length={}\n{}\n", i + 1, sequence.size(), sequence);
            }
            generated = n * (config.max_length - 1);
        } else {  // image
            const int64_t H = config.image_height, W = config.image_width, C = config.image_channels;
            const int64_t L = H * W * C;
            const int64_t scale = H <= 32 ? 3 : 1;
            std::filesystem::path out_path(out);
            if (out_path.has_parent_path()) std::filesystem::create_directories(out_path.parent_path());
            std::vector<std::vector<uint8_t>> images;
            if (complete > 0) {
                // Originals (top row) and completions (bottom row) of the first test images.
                data::ImageSet test = data::load_image_dataset(loaded.task.data, "test", complete);
                PF_CHECK(test.height == H && test.width == W && test.channels == C,
                         "{} holds {}x{}x{} images, but the model was trained on {}x{}x{} images",
                         loaded.task.data, test.height, test.width, test.channels, H, W, C);
                int64_t half = (H / 2) * W * C;
                std::vector<std::vector<int32_t>> prompts;
                for (int64_t i = 0; i < test.count; ++i) {
                    std::vector<int32_t> tokens = data::image_to_tokens(test, i);
                    std::vector<int32_t> p{training::kImageStartToken};
                    p.insert(p.end(), tokens.begin(), tokens.begin() + half);
                    prompts.push_back(p);
                    images.push_back(to_pixels(tokens, H, W, C));
                }
                auto rows = models::generate(model, prompts, L - half, temperature, gen, 256);
                for (auto& row : rows)
                    images.push_back(to_pixels(std::vector<int32_t>(row.begin() + 1, row.end()), H, W, C));
                data::write_image_grid(out, images, H, W, C, test.count, scale);
                generated = test.count * (L - half);
                fmt::print("wrote {}: {} test images (top) and their bottom halves completed (below)\n",
                           out, test.count);
            } else {
                if (n < 0) n = 16;
                PF_CHECK(n <= kMaxBatch, "--n {}: at most {} images at a time", n, kMaxBatch);
                std::vector<std::vector<int32_t>> prompts(n, {training::kImageStartToken});
                auto rows = models::generate(model, prompts, L, temperature, gen, 256);
                for (auto& row : rows)
                    images.push_back(to_pixels(std::vector<int32_t>(row.begin() + 1, row.end()), H, W, C));
                int64_t columns = int64_t(std::ceil(std::sqrt(double(n))));
                data::write_image_grid(out, images, H, W, C, columns, scale);
                generated = n * L;
                fmt::print("wrote {}: {} generated images\n", out, n);
            }
        }
        double seconds = now_seconds() - start;
        fmt::print(stderr, "{} tokens in {:.2f} s ({:.0f} tokens/s, recurrent decoding, {} attention)\n",
                   generated, seconds, double(generated) / seconds, config.attention);
        return 0;
    });
}
