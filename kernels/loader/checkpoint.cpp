// checkpoint.cpp — see checkpoint.h.
#include "checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../core/error.h"

namespace gptoss {

namespace fs = std::filesystem;

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir), config_(load_model_config(dir)) {
  const fs::path root(dir);
  const fs::path index = root / "model.safetensors.index.json";
  std::error_code ec;
  if (fs::exists(index, ec)) {
    std::ifstream in(index);
    std::stringstream buf;
    buf << in.rdbuf();
    const auto j = nlohmann::json::parse(buf.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
      fail(gptoss_status_invalid_checkpoint, index.string() + ": expected an object with a 'weight_map' object");
    }
    std::map<std::string, const SafetensorsFile*> opened;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) fail(gptoss_status_invalid_checkpoint, index.string() + ": weight_map['" + name + "'] is not a string");
      const std::string fname = file.get<std::string>();
      // The index may only point at files inside this directory.
      if (fname.empty() || fname.find('/') != std::string::npos || fname == "." || fname == "..") {
        fail(gptoss_status_invalid_checkpoint, index.string() + ": weight_map['" + name + "'] names '" + fname + "', not a file in the directory");
      }
      auto it = opened.find(fname);
      if (it == opened.end()) {
        files_.push_back(std::make_unique<SafetensorsFile>((root / fname).string()));
        it = opened.emplace(fname, files_.back().get()).first;
      }
      const TensorInfo* info = it->second->find(name);
      if (info == nullptr) {
        fail(gptoss_status_invalid_checkpoint, it->second->path() + ": tensor '" + name + "' listed in the index is not in this file");
      }
      tensors_.emplace(name, TensorRef{it->second, info});
    }
  } else {
    std::vector<fs::path> shards;
    for (const auto& e : fs::directory_iterator(root, ec)) {
      if (e.is_regular_file() && e.path().extension() == ".safetensors") shards.push_back(e.path());
    }
    if (ec) fail(gptoss_status_io_error, dir + ": cannot list: " + ec.message());
    std::sort(shards.begin(), shards.end());
    if (shards.empty()) fail(gptoss_status_invalid_checkpoint, dir + ": no *.safetensors files and no model.safetensors.index.json");
    for (const auto& p : shards) {
      files_.push_back(std::make_unique<SafetensorsFile>(p.string()));
      const SafetensorsFile* f = files_.back().get();
      for (const auto& [name, info] : f->tensors()) {
        const auto [it, inserted] = tensors_.emplace(name, TensorRef{f, &info});
        if (!inserted) fail(gptoss_status_invalid_checkpoint, p.string() + ": tensor '" + name + "' also appears in " + it->second.file->path());
      }
    }
  }
}

const TensorRef* Checkpoint::find(const std::string& name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorRef& Checkpoint::require(const std::string& name) const {
  const TensorRef* t = find(name);
  if (t == nullptr) fail(gptoss_status_invalid_checkpoint, dir_ + ": missing tensor '" + name + "'");
  return *t;
}

}  // namespace gptoss
