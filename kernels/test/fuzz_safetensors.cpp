// fuzz_safetensors.cpp — 10,000 mutated safetensors headers through the reader, built with
// AddressSanitizer + UBSan. Every input must be rejected with gptoss::Error or accepted; every accepted
// tensor range is then read in full from a buffer of exactly the data size (ASan flags any overread).
// Usage: fuzz_safetensors [iterations] [seed-file...]
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../loader/safetensors.h"

using gptoss::parse_safetensors_header;

namespace {

struct Seed {
  std::string header;
  uint64_t data_bytes;
};

Seed builtin_seed() {
  // Five tensors covering every shape class: matrix, 3-d, vector, scalar, zero-sized.
  const std::string h =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[4,8],"data_offsets":[0,64]},)"
      R"("b":{"dtype":"U8","shape":[3,5,16],"data_offsets":[64,304]},"c":{"dtype":"F32","shape":[7],"data_offsets":[304,332]},)"
      R"("d":{"dtype":"F32","shape":[],"data_offsets":[332,336]},"e":{"dtype":"I64","shape":[0,4],"data_offsets":[336,336]}})";
  return {h, 336};
}

bool load_seed_file(const char* path, Seed& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  if (!f || n > (1u << 26)) return false;
  out.header.resize(n);
  f.read(out.header.data(), static_cast<std::streamsize>(n));
  f.seekg(0, std::ios::end);
  out.data_bytes = static_cast<uint64_t>(f.tellg()) - 8 - n;
  return static_cast<bool>(f);
}

const char* kTokens[] = {"{", "}", "[", "]", ",", ":", "\"", "0", "-1", "1e309", "18446744073709551615", "9223372036854775808",
                         "4294967296", "null", "true", "\"BF16\"", "\"U8\"", "\"F64\"", "\"X\"", "\"shape\"", "\"dtype\"",
                         "\"data_offsets\"", "[0,0]", "[]", "[[1]]", "\\u0000", "\xff", "\"__metadata__\""};

std::string mutate(const std::string& in, std::mt19937_64& rng) {
  std::string s = in;
  const int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds && !s.empty(); ++r) {
    const size_t at = rng() % s.size();
    switch (rng() % 7) {
      case 0: s[at] = static_cast<char>(rng() & 0xff); break;                                // flip a byte
      case 1: s.insert(at, kTokens[rng() % (sizeof kTokens / sizeof *kTokens)]); break;      // insert a token
      case 2: s.erase(at, 1 + rng() % 16); break;                                            // delete a range
      case 3: s.insert(at, s.substr(rng() % s.size(), 1 + rng() % 32)); break;               // duplicate a range
      case 4: {                                                                               // rewrite a number
        const size_t d = s.find_first_of("0123456789", at);
        if (d != std::string::npos) {
          size_t e = d;
          while (e < s.size() && std::isdigit(static_cast<unsigned char>(s[e]))) ++e;
          const char* repl[] = {"0", "1", "4294967295", "18446744073709551615", "99999999999999999999", "-5", "1.5", "281474976710656"};
          s.replace(d, e - d, repl[rng() % 8]);
        }
        break;
      }
      case 5: s.resize(at); break;                                                           // truncate
      default: std::swap(s[at], s[rng() % s.size()]); break;                                 // swap two bytes
    }
  }
  return s;
}

uint64_t touch_all(const std::map<std::string, gptoss::TensorInfo>& tensors, const std::vector<uint8_t>& data) {
  uint64_t sum = 0;
  for (const auto& [_, t] : tensors)
    for (uint64_t i = t.begin; i < t.end; ++i) sum += data.data()[i];
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 10000;
  std::vector<Seed> seeds = {builtin_seed()};
  for (int i = 2; i < argc; ++i) {
    Seed s;
    if (load_seed_file(argv[i], s)) seeds.push_back(s);
    else std::fprintf(stderr, "warning: cannot read seed %s\n", argv[i]);
  }
  std::mt19937_64 rng(20261123);
  char tmpl[] = "/tmp/expertmesh-fuzz-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) return 2;
  close(fd);
  int accepted = 0, rejected = 0, files = 0;
  uint64_t checksum = 0;
  for (int it = 0; it < iterations; ++it) {
    const Seed& seed = seeds[rng() % seeds.size()];
    const std::string header = mutate(seed.header, rng);
    // Sometimes the data area is shorter or longer than the seed's.
    uint64_t data_bytes = seed.data_bytes;
    if (rng() % 5 == 0) data_bytes = data_bytes > 0 ? rng() % (data_bytes * 2) : 0;
    std::vector<uint8_t> data(data_bytes, static_cast<uint8_t>(it));
    try {
      const auto tensors = parse_safetensors_header(header.data(), header.size(), data_bytes, "fuzz");
      checksum += touch_all(tensors, data);
      ++accepted;
    } catch (const gptoss::Error&) {
      ++rejected;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "iteration %d: untyped exception: %s\n", it, e.what());
      return 1;
    }
    if (it % 50 == 0) {  // the mmap path, with a random (sometimes lying) header length
      std::ofstream f(tmpl, std::ios::binary | std::ios::trunc);
      uint64_t n = header.size();
      if (rng() % 4 == 0) n = rng() % 3 == 0 ? ~0ull : n + (rng() % 64) - 32;
      f.write(reinterpret_cast<const char*>(&n), 8);
      f.write(header.data(), static_cast<std::streamsize>(header.size()));
      f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
      f.close();
      ++files;
      try {
        gptoss::SafetensorsFile file(tmpl);
        for (const auto& [_, t] : file.tensors())
          for (uint64_t i = 0; i < t.end - t.begin; ++i) checksum += file.data(t)[i];
      } catch (const gptoss::Error&) {
      } catch (const std::exception& e) {
        std::fprintf(stderr, "file iteration %d: untyped exception: %s\n", it, e.what());
        return 1;
      }
    }
  }
  unlink(tmpl);
  std::printf("fuzz: %d mutated headers (%d also through mmap): %d accepted, %d rejected with a typed error, 0 crashes (checksum %llu)\n",
              iterations, files, accepted, rejected, static_cast<unsigned long long>(checksum));
  return 0;
}
