// sample.cpp — generate from a trained causal model, with recurrent decoding.
//
//   build/sample --ckpt runs/austen/model.ckpt --prompt "It is a truth" --n 400
//   build/sample --ckpt runs/fmnist/model.ckpt --n 16 --out results/samples.png
//   build/sample --ckpt runs/fmnist/model.ckpt --complete 8 --out results/completions.png
//   build/sample --ckpt runs/protein/model.ckpt --n 5          # FASTA on stdout
//
// Text goes to stdout; images to a PNG grid; proteins as FASTA. --complete N takes N
// test images, keeps their top half and samples the bottom half (a second grid shows
// originals above completions). The decoding speed (tokens/s) goes to stderr. A flag
// for another kind of model (--prompt: text; --complete and --out: images) is refused.
//
// Text can be of any length: past the length the model was trained on, decoding goes
// on in a sliding window (models/generate.h explains it). --n is at most a million
// bytes of text, or 1024 images or proteins.
#include "models/generate.h"
#include "tools/data/images.h"
#include "models/run.h"
#include "models/vocabulary.h"
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

struct SampleOptions {
    std::string checkpoint, prompt, out = "results/samples.png";
    int64_t n = -1, complete = 0;  // n -1: the kind's default
    float temperature = 1.0f;
    uint64_t seed = 0;
};

// Each returns the number of tokens it generated.

// Text: the prompt (default a newline) and n bytes after it, on stdout.
int64_t sample_text(const models::SequenceModel& model, const SampleOptions& o, Generator& gen) {
    const int64_t n = o.n < 0 ? 400 : o.n;
    std::string text = o.prompt.empty() ? "\n" : o.prompt;
    std::vector<int32_t> tokens;
    for (char c : text) tokens.push_back(int32_t(uint8_t(c)));
    std::vector<int32_t> row = models::generate(model, {tokens}, n, o.temperature, gen)[0];
    std::string output;
    for (int32_t t : row) output.push_back(char(uint8_t(t)));
    fmt::print("{}\n", output);
    return n;
}

// Proteins: n sequences from the start token to the end token, as FASTA on stdout.
int64_t sample_proteins(const models::SequenceModel& model, const SampleOptions& o, Generator& gen) {
    namespace protein = models::protein;
    const int64_t n = o.n < 0 ? 5 : o.n, length = model.config().attention.max_length - 1;
    PF_CHECK(n <= kMaxBatch, "--n {}: at most {} proteins at a time", n, kMaxBatch);
    std::vector<std::vector<int32_t>> prompts(n, {protein::kBos});
    auto rows = models::generate(model, prompts, length, o.temperature, gen);
    for (int64_t i = 0; i < n; ++i) {
        std::string sequence;
        for (size_t t = 1; t < rows[i].size(); ++t) {
            if (rows[i][t] == protein::kEos || !protein::is_residue(rows[i][t])) break;
            sequence.push_back(protein::decode(rows[i][t]));
        }
        fmt::print(">sample_{} length={}\n{}\n", i + 1, sequence.size(), sequence);
    }
    return n * length;
}

// Images: rows of tokens (start token first) as pixels, written as a PNG grid.
void write_images(const std::vector<std::vector<int32_t>>& rows, const models::ModelConfig& config,
                  int64_t columns, const std::string& out) {
    const int64_t H = config.image_height, W = config.image_width, C = config.image_channels;
    std::vector<std::vector<uint8_t>> images;
    for (const auto& row : rows) {
        images.emplace_back(H * W * C);
        data::tokens_to_image(std::vector<int32_t>(row.begin() + 1, row.end()), H, W, C,
                              images.back().data());
    }
    std::filesystem::path out_path(out);
    if (out_path.has_parent_path()) std::filesystem::create_directories(out_path.parent_path());
    data::write_image_grid(out, images, H, W, C, columns, H <= 32 ? 3 : 1);
}

// Images: n generated images in a square grid.
int64_t sample_images(const models::SequenceModel& model, const SampleOptions& o, Generator& gen) {
    const int64_t n = o.n < 0 ? 16 : o.n, L = model.config().attention.max_length;
    PF_CHECK(n <= kMaxBatch, "--n {}: at most {} images at a time", n, kMaxBatch);
    std::vector<std::vector<int32_t>> prompts(n, {models::kImageStartToken});
    auto rows = models::generate(model, prompts, L, o.temperature, gen, models::kImageIntensities);
    write_images(rows, model.config(), int64_t(std::ceil(std::sqrt(double(n)))), o.out);
    fmt::print("wrote {}: {} generated images\n", o.out, n);
    return n * L;
}

// Images: the first `complete` test images (top row) and, below, their bottom halves
// sampled after their top halves.
int64_t complete_images(const models::SequenceModel& model, const std::string& data,
                        const SampleOptions& o, Generator& gen) {
    const models::ModelConfig& config = model.config();
    const int64_t H = config.image_height, W = config.image_width, C = config.image_channels;
    data::ImageSet test = data::load_image_dataset(data, "test", o.complete);
    PF_CHECK(test.height == H && test.width == W && test.channels == C,
             "{} holds {}x{}x{} images, but the model was trained on {}x{}x{} images", data,
             test.height, test.width, test.channels, H, W, C);
    const int64_t half = (H / 2) * W * C;
    std::vector<std::vector<int32_t>> prompts, originals;
    for (int64_t i = 0; i < test.count; ++i) {
        std::vector<int32_t> tokens = data::image_to_tokens(test, i);
        prompts.push_back({models::kImageStartToken});
        prompts.back().insert(prompts.back().end(), tokens.begin(), tokens.begin() + half);
        originals.push_back({models::kImageStartToken});
        originals.back().insert(originals.back().end(), tokens.begin(), tokens.end());
    }
    auto rows = models::generate(model, prompts, H * W * C - half, o.temperature, gen,
                                 models::kImageIntensities);
    originals.insert(originals.end(), rows.begin(), rows.end());
    write_images(originals, config, test.count, o.out);
    fmt::print("wrote {}: {} test images (top) and their bottom halves completed (below)\n",
               o.out, test.count);
    return test.count * (H * W * C - half);
}

// Flags that one kind of model reads are refused for the others, never ignored.
void check_flags_fit(const CLI::App& app, models::TaskKind kind, const std::string& checkpoint) {
    struct Flag {
        const char* name;
        models::TaskKind kind;
        const char* why;
    };
    const Flag flags[] = {
        {"--prompt", models::TaskKind::Text, "the text to continue"},
        {"--complete", models::TaskKind::Image, "test images to complete"},
        {"--out", models::TaskKind::Image, "the PNG grid; text and proteins go to stdout"}};
    auto name = [](models::TaskKind k) { return models::task_names().at(size_t(k)); };
    for (const Flag& flag : flags)
        PF_CHECK(app.count(flag.name) == 0 || kind == flag.kind,
                 "{} is for {} models ({}), but {} is {} {} model", flag.name, name(flag.kind),
                 flag.why, checkpoint, kind == models::TaskKind::Image ? "an" : "a", name(kind));
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Generate text, images or proteins from a trained causal model", "sample"};
    SampleOptions o;
    app.add_option("--ckpt", o.checkpoint, "model checkpoint (model.ckpt of a run)")->required();
    app.add_option("--prompt", o.prompt, "text: what to continue (default: a newline)");
    app.add_option("--n", o.n, "text: bytes to generate (default 400); images and proteins: how "
                               "many (default 16 and 5)")->check(in_range(int64_t(1), kMaxCount));
    app.add_option("--temperature", o.temperature, "sampling temperature; 0 takes the most likely")
        ->check(non_negative());  // NaN and inf: refused by run_program
    app.add_option("--complete", o.complete, "images: complete the bottom half of N test images")
        ->check(positive());
    app.add_option("--out", o.out, "images: the PNG grid to write")->check(output_file());
    add_seed_option(app, o.seed, "random seed");
    add_threads_option(app);
    return run_program(app, argc, argv, [&] {
        Generator dropout(0), gen(o.seed);
        models::TrainedModel trained = models::load_model(o.checkpoint, dropout);
        const models::SequenceModel& model = *trained.model;
        check_flags_fit(app, trained.task.kind, o.checkpoint);
        PF_CHECK(model.config().causal(), "{} is a masked (bidirectional) model: it does not "
                 "generate", o.checkpoint);
        double start = now_seconds();
        int64_t generated = 0;
        switch (trained.task.kind) {
            case models::TaskKind::Text: generated = sample_text(model, o, gen); break;
            case models::TaskKind::Protein: generated = sample_proteins(model, o, gen); break;
            case models::TaskKind::Image:
                generated = o.complete > 0 ? complete_images(model, trained.task.data, o, gen)
                                           : sample_images(model, o, gen);
                break;
        }
        double seconds = now_seconds() - start;
        fmt::print(stderr, "{} tokens in {:.2f} s ({:.0f} tokens/s, recurrent decoding, {} attention)\n",
                   generated, seconds, double(generated) / seconds,
                   nn::mechanism_name(model.config().attention.mechanism));
        return 0;
    });
}
