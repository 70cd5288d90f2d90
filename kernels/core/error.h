// error.h — the engine's one exception type. Internal code throws gptoss::Error with a status from the
// C ABI and a message that names what failed (file, tensor, shape); the C ABI boundary catches it and
// turns it into a status + message. Nothing else is thrown across layers.
#pragma once

#include <stdexcept>
#include <string>

#include "gptoss.h"

namespace gptoss {

class Error : public std::runtime_error {
 public:
  Error(gptoss_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  gptoss_status status() const noexcept { return status_; }

 private:
  gptoss_status status_;
};

[[noreturn]] inline void fail(gptoss_status status, const std::string& message) { throw Error(status, message); }

inline void check(bool ok, gptoss_status status, const std::string& message) {
  if (!ok) fail(status, message);
}

}  // namespace gptoss
