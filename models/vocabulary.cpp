// vocabulary.cpp — the protein alphabet's encoding.
#include "models/vocabulary.h"

#include "engine/error.h"

#include <array>
#include <cctype>

namespace pf::models::protein {

namespace {

// token_of[byte]: the token of a letter (either case), -1 for anything else.
constexpr std::array<int32_t, 256> make_token_table() {
    std::array<int32_t, 256> table{};
    for (int32_t& token : table) token = -1;
    const int32_t unknown = kFirstResidue + int32_t(kResidues.find('X'));
    for (int c = 'A'; c <= 'Z'; ++c) table[c] = table[c - 'A' + 'a'] = unknown;
    for (size_t i = 0; i < kResidues.size(); ++i) {
        int c = kResidues[i];
        table[c] = table[c - 'A' + 'a'] = kFirstResidue + int32_t(i);
    }
    return table;
}

constexpr std::array<int32_t, 256> token_of = make_token_table();

constexpr std::string_view kSpecialLetters = ".#<>|";  // pad, mask, bos, eos, sep

}  // namespace

int32_t vocab_size() { return kFirstResidue + int32_t(kResidues.size()); }

int32_t encode(char residue) {
    int32_t token = token_of[uint8_t(residue)];
    PF_CHECK(token >= 0, "protein::encode: {} is not an amino-acid letter",
             std::isprint(uint8_t(residue)) ? fmt::format("'{}'", residue)
                                            : fmt::format("byte 0x{:02x}", int(uint8_t(residue))));
    return token;
}

char decode(int32_t token) {
    PF_CHECK(token >= 0 && token < vocab_size(), "protein::decode: token {} is outside 0..{}",
             token, vocab_size() - 1);
    return token < kFirstResidue ? kSpecialLetters[size_t(token)]
                                 : kResidues[size_t(token - kFirstResidue)];
}

}  // namespace pf::models::protein
