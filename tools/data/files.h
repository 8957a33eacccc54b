// files.h — reading whole files, the way every data loader needs it.
//
//   std::string bytes = pf::data::read_file("train-images-idx3-ubyte.gz");  // gunzipped
//
// read_file reads plain and gzip-compressed files alike (zlib's gzread passes plain
// files through), so every loader accepts both. A missing, unreadable or empty-named
// file, or gzip data that is corrupt or cut short, throws pf::Error naming the file —
// and, for damaged gzip data, how far it got (bytes and line), so that a FASTA or text
// error can point at the line.
//
// (Writing goes through nn::write_file_atomic, in nn/checkpoint.h.)
#pragma once

#include <string>

namespace pf::data {

std::string read_file(const std::string& path);

}  // namespace pf::data
