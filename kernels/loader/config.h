// config.h — reads the gpt-oss hyper-parameters (core/config.h) from a Hugging Face config.json
// (rope_scaling or rope_parameters) or from OpenAI's original config.json.
#pragma once

#include <string>

#include "../core/config.h"

namespace gptoss {

// Reads and validates <dir>/config.json: every field against its domain and the fields against each
// other; throws invalid_checkpoint naming the offending key and the value found.
ModelConfig load_model_config(const std::string& dir);

}  // namespace gptoss
