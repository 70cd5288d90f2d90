// checkpoint.h — a gpt-oss checkpoint directory: config plus every safetensors file, mapped.
// With model.safetensors.index.json the weight_map decides which file holds each tensor; without it,
// every *.safetensors in the directory is opened (the original format's loader does the same).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config.h"
#include "safetensors.h"

namespace gptoss {

struct TensorRef {
  const SafetensorsFile* file;
  const TensorInfo* info;
  const uint8_t* data() const { return file->data(*info); }
};

class Checkpoint {
 public:
  explicit Checkpoint(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  const TensorRef* find(const std::string& name) const;
  // Throws invalid_checkpoint "missing tensor" naming the directory when absent.
  const TensorRef& require(const std::string& name) const;
  size_t num_tensors() const { return tensors_.size(); }
  size_t num_files() const { return files_.size(); }

 private:
  std::string dir_;
  ModelConfig config_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, TensorRef> tensors_;
};

}  // namespace gptoss
