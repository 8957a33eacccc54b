// vocabulary.h — the tokens each kind of model reads and writes.
//
//   text     bytes: token t is the byte t (256 tokens);
//   image    intensities 0..255 of the pixels' channels, and a start token (256) that
//            a sequence begins with, so that the first intensity is predicted too;
//   protein  five special tokens, then the amino-acid letters (30 tokens).
//
// A target of kIgnore is not scored: cross_entropy skips it (padding, unmasked residues).
#pragma once

#include <cstdint>
#include <string_view>

namespace pf::models {

constexpr int32_t kIgnore = -100;  // a target the loss skips

constexpr int32_t kByteTokens = 256;
constexpr int32_t kImageIntensities = 256;                  // tokens 0..255
constexpr int32_t kImageStartToken = kImageIntensities;     // an image sequence's first input

namespace protein {

// Token ids: five special tokens, then the 20 standard amino acids, then the rest.
constexpr int32_t kPad = 0;   // padding after a short sequence
constexpr int32_t kMask = 1;  // a hidden residue (masked objective)
constexpr int32_t kBos = 2;   // beginning of a sequence
constexpr int32_t kEos = 3;   // end of a sequence
constexpr int32_t kSep = 4;   // between sequences in a concatenated stream
constexpr int32_t kFirstResidue = 5;
// 'X' unknown, 'B' D or N, 'Z' E or Q, 'U' selenocysteine, 'O' pyrrolysine.
constexpr std::string_view kResidues = "ACDEFGHIKLMNPQRSTVWYXBZUO";
constexpr int32_t kStandardResidues = 20;  // the first 20 letters of kResidues

int32_t vocab_size();  // 5 + 25 = 30
// A letter (either case) to its token; other letters to X's token; non-letters throw.
int32_t encode(char residue);
// A token to its letter; specials to '.' (pad), '#' (mask), '<' (bos), '>' (eos), '|' (sep).
char decode(int32_t token);
inline bool is_residue(int32_t token) { return token >= kFirstResidue; }

}  // namespace protein

}  // namespace pf::models
