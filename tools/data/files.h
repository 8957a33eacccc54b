// files.h — reading and writing whole files, the way every data loader needs it.
//
//   std::string bytes = pf::data::read_file("train-images-idx3-ubyte.gz");  // gunzipped
//   pf::data::write_file_atomically("results/grid.png", png_bytes);
//
// read_file reads plain and gzip-compressed files alike (zlib's gzread passes plain
// files through), so every loader accepts both. A missing, unreadable or empty-named
// file, or gzip data that is corrupt or cut short, throws pf::Error naming the file —
// and, for damaged gzip data, how far it got (bytes and line), so that a FASTA or text
// error can point at the line.
//
// write_file_atomically writes PATH.tmp, flushes it to disk and renames it over PATH:
// a reader (or a crash) never sees half a file.
#pragma once

#include <string>
#include <string_view>

namespace pf::data {

std::string read_file(const std::string& path);

void write_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace pf::data
