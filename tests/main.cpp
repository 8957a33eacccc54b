// main.cpp — the test runner: Catch2's session, plus the closing line CI reads.
//
// Catch2 prints its own summary; after it we print "N passed, N failed" counting
// test cases, the form `make test` promises to end with.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "tools/util/blas_kernel.h"

#include <cstdio>

namespace {
Catch::Totals g_totals;

struct TotalsListener : Catch::TestEventListenerBase {
    using TestEventListenerBase::TestEventListenerBase;
    void testRunEnded(Catch::TestRunStats const& stats) override { g_totals = stats.totals; }
};
}  // namespace

CATCH_REGISTER_LISTENER(TotalsListener)

int main(int argc, char* argv[]) {
    // The kernels the programs run (tools/util/blas_kernel.h), so that tests see what users do.
    pf::use_matching_blas_kernel(argv);
    std::printf("%s\n", pf::blas_kernel_line().c_str());
    int failed = Catch::Session().run(argc, argv);
    std::printf("%llu passed, %llu failed\n",
                static_cast<unsigned long long>(g_totals.testCases.passed),
                static_cast<unsigned long long>(g_totals.testCases.failed));
    return failed == 0 ? 0 : 1;
}
