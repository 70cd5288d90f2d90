// sample_cases.h — test_ops' cases comparing a backend's f32_sample with the CPU op (sample_cases.cpp).
#pragma once

#include <functional>
#include <string>

#include "../cpu/ops.h"

namespace gptoss::test {

// expect(name, passed, detail) records one case.
using Expect = std::function<void(const std::string&, bool, const std::string&)>;

void test_sample_against_cpu(const OpSet& ops, const Expect& expect);

}  // namespace gptoss::test
