// data_file.h — how every data loader reads its files.
//
//   std::string bytes = pf::data::read_data_file("data/austen/train.txt");
//
// Like pf::read_file (gzip is undone, errors name the file), but only for regular files:
// a device such as /dev/zero, or a FIFO, would never end, so it is refused up front.
#pragma once

#include <string>

namespace pf::data {

std::string read_data_file(const std::string& path);

}  // namespace pf::data
