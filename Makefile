# performer.cpp — build with `make`, test with `make test`, train the demo with `make demo`.
#
#   make          build every program under build/
#   make test     build and run the Catch2 suite (ends with "N passed, N failed")
#   make bench    run the benchmarks; tables and plots go to results/
#   make sanitize the suite under AddressSanitizer and UndefinedBehaviorSanitizer
#   make deps     install the Debian packages the build needs (as root), if missing
#   make data     install the data set packages if missing and prepare data/ (e.g. data/austen)
#   make demo     install what is missing, prepare the data, train and show the demo
#
# Library code (engine/, nn/, models/, tools/*/) is compiled once into objects; each
# program is one tools/<name>.cpp with a main().

CXX      ?= g++
# -march=x86-64-v3: a fixed, portable target (AVX2 + FMA, every x86-64 CPU since
#   2013-2015), never -march=native. Debian 12's GCC 12.2 miscompiles AVX-512 code
#   (-march=native on an AVX-512 CPU, or x86-64-v4): it turned {1, 1, 1, 1, 0, 0, 0, 0}
#   into eight ones (tests/test_build.cpp catches it), and a native binary also dies
#   with SIGILL on an older CPU. OpenBLAS picks its own kernels at run time anyway.
# -fno-trapping-math: we never use floating-point exceptions, and without them the
#   compiler may vectorise loops with selects (e.g. kernels::fast_exp). Not -ffast-math.
# -Wno-stringop-overflow -Wno-restrict: GCC 12 false positives inside fmt 9 and
#   std::string (GCC bug 105329).
CXXFLAGS ?= -std=c++20 -O3 -march=x86-64-v3 -fno-trapping-math -g -Wall -Wextra -Wno-stringop-overflow -Wno-restrict
CPPFLAGS += -I. -MMD -MP
LDLIBS   += -lopenblas -lfmt -lz -lstb -lpthread
BUILD    := build
# Open MPI, for data-parallel training (tools/distributed, the one file that includes
# mpi.h), linked only into what calls it: build/train and build/tests (MPI_OBJ below).
# Asked of pkg-config when first used, after `deps` has installed it. Nothing of MPI
# runs unless a program is started by mpirun.
MPI_CPPFLAGS = $(shell pkg-config --cflags ompi-c)
MPI_LDLIBS   = $(shell pkg-config --libs ompi-c)
# Parallel by default; a sub-make (as in `make sanitize`) shares its parent's jobs.
ifeq ($(MAKELEVEL),0)
MAKEFLAGS += -j$(shell nproc)
endif

# Debian packages the build, the tests and the plots need (chromium: the browser test of
# build/explore's page, tests/test_explore.cpp).
PACKAGES := g++ make libopenblas-dev catch2 libfmt-dev libcli11-dev libstb-dev zlib1g-dev gnuplot-nox \
            pkgconf libopenmpi-dev openmpi-bin nlohmann-json3-dev chromium
# Debian packages that hold the data sets (Jane Austen's novels, Fashion-MNIST, proteins).
DATA_PACKAGES := r-cran-janeaustenr dataset-fashion-mnist mmseqs2-examples

PROGRAMS := train sample eval compare bench bench_model bench_ops approx ngram scaling explore
LIB_SRC  := $(wildcard engine/*.cpp nn/*.cpp models/*.cpp tools/*/*.cpp)
TEST_SRC := $(wildcard tests/*.cpp)
LIB_OBJ  := $(LIB_SRC:%.cpp=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.cpp=$(BUILD)/obj/%.o)
# The objects that need MPI: tools/distributed and the trainer, its one caller. Only
# build/train and build/tests link them; every other program links BASE_OBJ.
MPI_OBJ  := $(filter $(BUILD)/obj/tools/distributed/% $(BUILD)/obj/tools/training/trainer.o,$(LIB_OBJ))
BASE_OBJ := $(filter-out $(MPI_OBJ),$(LIB_OBJ))

.PHONY: all test sanitize bench deps data demo clean
all: $(PROGRAMS:%=$(BUILD)/%)

# $(call install_missing,PACKAGES): apt-get install those of PACKAGES that are not
# installed, as root; a no-op (one dpkg query each) when all are there.
define install_missing
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  if [ "$$(id -u)" != 0 ]; then echo "error: run as root, or: sudo apt-get install" $$missing; exit 2; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing \
	    || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; }; \
	fi
endef

deps:
	$(call install_missing,$(PACKAGES))

# Data sets: installed by package name, then turned into files under data/.
data: deps
	$(call install_missing,$(DATA_PACKAGES))
	@bash tools/data/prepare_austen.sh data/austen

# Objects depend on the Makefile too: a change of flags rebuilds everything.
$(BUILD)/obj/%.o: %.cpp Makefile | deps
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/obj/tools/distributed/%.o: CPPFLAGS += $(MPI_CPPFLAGS)

# build/explore's page is an HTML file of its own (tools/util/attention_page.html); the
# object that writes it includes it as one C++ raw string literal.
$(BUILD)/gen/attention_page.inc: tools/util/attention_page.html
	@mkdir -p $(dir $@)
	{ printf 'R"page('; cat $<; printf ')page"\n'; } > $@
$(BUILD)/obj/tools/util/attention_page.o: $(BUILD)/gen/attention_page.inc
$(BUILD)/obj/tools/util/attention_page.o: CPPFLAGS += -I$(BUILD)/gen

$(BUILD)/%: $(BUILD)/obj/tools/%.o $(BASE_OBJ)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/train: $(MPI_OBJ)
$(BUILD)/train $(BUILD)/tests: LDLIBS += $(MPI_LDLIBS)

$(BUILD)/tests: $(TEST_OBJ) $(LIB_OBJ)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

test: all $(BUILD)/tests
	$(BUILD)/tests

# The suite with every object and program rebuilt under AddressSanitizer and
# UndefinedBehaviorSanitizer (any finding aborts) in build/sanitize. The tests run
# there, where build/ leads back to the same folder, so that the program tests run
# the checked programs too. About 10 minutes on 2 cores, mostly building; not in CI.
# (-Wno-maybe-uninitialized: GCC 12 false positives in std::regex with ASan.)
SANITIZE_FLAGS := -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
                  -fno-omit-frame-pointer -Wno-maybe-uninitialized
sanitize: deps
	$(MAKE) BUILD=build/sanitize CXXFLAGS="$(CXXFLAGS) $(SANITIZE_FLAGS)" \
	  $(PROGRAMS:%=build/sanitize/%) build/sanitize/tests
	ln -sfn . build/sanitize/build
	cd build/sanitize && ./tests

# The benchmarks of the engine, of attention, of whole models and of data-parallel
# training; tables and plots go to results/ (about 35 minutes on 2 cores, and for
# bench --paper, the paper's 6-layer model up to L = 65536, roughly 20-30 more: an
# estimate from L <= 2048, not yet measured).
bench: all data
	$(BUILD)/bench_ops
	$(BUILD)/approx
	$(BUILD)/bench
	$(BUILD)/bench --paper
	$(BUILD)/bench_model
	$(BUILD)/bench_model --task image
	bash tools/experiments/distributed.sh

# A few minutes of training on real data, then what the models learned (tools/demo.sh).
demo: all data
	@bash tools/demo.sh

clean:
	rm -rf $(BUILD)

.SECONDARY:
-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(PROGRAMS:%=$(BUILD)/obj/tools/%.d)
