#!/usr/bin/env bash
# prepare_austen.sh — Jane Austen's six novels as a byte-level text corpus.
#
#   tools/data/prepare_austen.sh [OUT_DIR]        (default data/austen; `make data` runs it)
#
# The text comes from the Debian package r-cran-janeaustenr, read through Rscript:
# each novel is a character vector with one element per line. The split is by book:
#   OUT_DIR/train.txt  Sense and Sensibility, Pride and Prejudice, Mansfield Park,
#                      Emma, Northanger Abbey (~3.6 MB)
#   OUT_DIR/valid.txt  Persuasion (~0.47 MB)
# Lines are joined with "\n"; the text is UTF-8, written byte for byte. Both files are
# written in a temporary folder and moved into place, so a reader never sees half a
# file; if both already exist nothing is done.
set -euo pipefail

out=${1:-data/austen}
if [[ -s $out/train.txt && -s $out/valid.txt ]]; then
  echo "austen: $out/train.txt and $out/valid.txt already exist"
  exit 0
fi
if ! command -v Rscript >/dev/null; then
  echo "error: Rscript not found; install the Debian package r-cran-janeaustenr (make data)" >&2
  exit 2
fi

mkdir -p "$out"
temp=$(mktemp -d "$out/.prepare.XXXXXX")
trap 'rm -rf "$temp"' EXIT

Rscript --vanilla - "$temp" <<'R'
suppressPackageStartupMessages(library(janeaustenr))
out <- commandArgs(trailingOnly = TRUE)[1]
train <- c(sensesensibility, prideprejudice, mansfieldpark, emma, northangerabbey)
# useBytes: write the UTF-8 bytes as they are, whatever the locale.
writeLines(train, file.path(out, "train.txt"), sep = "\n", useBytes = TRUE)
writeLines(persuasion, file.path(out, "valid.txt"), sep = "\n", useBytes = TRUE)
R

for part in train valid; do
  [[ -s $temp/$part.txt ]] || { echo "error: Rscript wrote no $part.txt" >&2; exit 1; }
done
mv "$temp/valid.txt" "$out/valid.txt"
mv "$temp/train.txt" "$out/train.txt"
echo "austen: $(wc -c <"$out/train.txt") bytes in $out/train.txt (5 novels)," \
     "$(wc -c <"$out/valid.txt") bytes in $out/valid.txt (Persuasion)"
