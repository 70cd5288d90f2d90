// place_weights.cpp — copies one rank's weights into a backend's memory once, at engine creation: every
// view of ModelWeights is re-pointed at a device copy. bf16 matrices are packed to ld = cols (a shard's
// column slice of o_proj would otherwise drag the other ranks' columns along); MXFP4 experts are copied
// packed, so a device holds 4.25 bits per expert weight as the checkpoint does; experts and the dense
// products' matrices in the layouts the caller asks for (Rows16 for the CPU engine's resident weights:
// core/tensor.h), q8 matrices (the q8 dense-weight mode) too. A view shared by two fields (tied
// embeddings) is copied once per layout.
#include <cstring>
#include <deque>
#include <map>
#include <tuple>
#include <vector>
#include <utility>

#include "../core/device.h"
#include "../core/bf16_layout.h"
#include "../core/mxfp4_layout.h"
#include "../core/q8_layout.h"
#include "../model/weights.h"

namespace gptoss {

namespace {

// The device copies of one placement; released with the placed weights.
class DeviceStore {
 public:
  DeviceStore(const DeviceMemory& mem, WeightLayouts layouts) : mem_(mem), layouts_(layouts) {}
  DeviceStore(const DeviceStore&) = delete;
  DeviceStore& operator=(const DeviceStore&) = delete;
  ~DeviceStore() {
    for (const auto& [key, p] : copies_) mem_.release(p);
  }

  // Device copy of rows × row_bytes host bytes, row r starting at src + r × stride_bytes.
  const void* copy(const void* src, int64_t rows, size_t row_bytes, size_t stride_bytes) {
    if (src == nullptr || rows == 0 || row_bytes == 0) return nullptr;
    const Key key{src, rows, row_bytes};
    if (auto it = copies_.find(key); it != copies_.end()) return it->second;
    const size_t bytes = static_cast<size_t>(rows) * row_bytes;
    void* dst = alloc(key, bytes);
    if (stride_bytes == row_bytes) {
      mem_.upload(dst, src, bytes);
    } else {
      std::vector<uint8_t> packed(bytes);
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(packed.data() + r * row_bytes, static_cast<const uint8_t*>(src) + r * stride_bytes, row_bytes);
      mem_.upload(dst, packed.data(), bytes);
    }
    return dst;
  }

  // The embedding table (read by row): always Rows.
  MatrixBF16 place(const MatrixBF16& m) {
    const auto* data = static_cast<const bf16_t*>(copy(m.data, m.rows, m.cols * sizeof(bf16_t), m.ld * sizeof(bf16_t)));
    return MatrixBF16{data, m.rows, m.cols, m.cols};
  }
  // A dense product's matrix: in the layout asked for.
  MatrixBF16 place_dense(const MatrixBF16& m) {
    if (layouts_.dense == BF16Layout::Rows16 && m.layout == BF16Layout::Rows && m.data != nullptr) return place_rows16(m);
    return place(m);
  }
  MxFp4Matrix place(const MxFp4Matrix& m) {
    const size_t blocks_per_row = static_cast<size_t>(m.cols / 32);
    if (layouts_.experts == MxFp4Layout::Rows16 && m.layout == MxFp4Layout::Rows && m.blocks != nullptr) return place_rows16(m);
    return MxFp4Matrix{static_cast<const uint8_t*>(copy(m.blocks, m.rows, blocks_per_row * 16, blocks_per_row * 16)),
                       static_cast<const uint8_t*>(copy(m.scales, m.rows, blocks_per_row, blocks_per_row)), m.rows, m.cols, m.layout};
  }
  MatrixQ8 place(const MatrixQ8& m) {
    if (layouts_.q8 == Q8Layout::Rows16 && m.layout == Q8Layout::Runs && m.codes != nullptr) return place_rows16(m);
    const size_t cols = static_cast<size_t>(m.cols), nb = cols / 32;
    return MatrixQ8{static_cast<const uint8_t*>(copy(m.codes, m.rows, cols, cols)),
                    static_cast<const float*>(copy(m.scales, m.rows, nb * sizeof(float), nb * sizeof(float))), m.rows, m.cols, m.layout};
  }
  template <class T>
  Span<T> place(const Span<T>& v) {
    return Span<T>{static_cast<const T*>(copy(v.ptr, 1, v.size() * sizeof(T), v.size() * sizeof(T))), v.count};
  }
  // A matrix read in 8 bits keeps only its shape in bf16: the device never reads those weights.
  MatrixBF16 place(const MatrixBF16& m, const MatrixQ8& q8) { return q8.codes ? MatrixBF16{nullptr, m.rows, m.cols, m.cols} : place_dense(m); }
  Linear place(const Linear& l) { return Linear{place(l.w, l.q8), place(l.bias), place(l.q8)}; }
  // A host table to upload (it holds device pointers already), kept until the upload.
  Span<ExpertProj> keep(std::vector<ExpertProj> table) {
    tables_.push_back(std::move(table));
    return Span<ExpertProj>{tables_.back().data(), static_cast<int64_t>(tables_.back().size())};
  }

 private:
  using Key = std::tuple<const void*, int64_t, size_t>;

  void* alloc(const Key& key, size_t bytes) {
    void* dst = mem_.alloc(bytes);
    copies_.emplace(key, dst);
    return dst;
  }

  // m rewritten as Rows16 on the host, then uploaded; keyed by m's own bytes (rows −1: not a plain copy).
  MxFp4Matrix place_rows16(const MxFp4Matrix& m) {
    const Key block_key{m.blocks, -1, 0}, scale_key{m.scales, -1, 0};
    if (auto b = copies_.find(block_key), s = copies_.find(scale_key); b != copies_.end() && s != copies_.end())
      return MxFp4Matrix{static_cast<const uint8_t*>(b->second), static_cast<const uint8_t*>(s->second), m.rows, m.cols, MxFp4Layout::Rows16};
    std::vector<uint8_t> blocks(static_cast<size_t>(rows16_block_bytes(m))), scales(static_cast<size_t>(rows16_scale_bytes(m)));
    pack_rows16(m, blocks.data(), scales.data());
    void* db = alloc(block_key, blocks.size());
    mem_.upload(db, blocks.data(), blocks.size());
    void* ds = alloc(scale_key, scales.size());
    mem_.upload(ds, scales.data(), scales.size());
    return MxFp4Matrix{static_cast<const uint8_t*>(db), static_cast<const uint8_t*>(ds), m.rows, m.cols, MxFp4Layout::Rows16};
  }

  // m rewritten as Rows16 on the host, then uploaded; keyed by m's own bytes (rows −2: not a plain copy).
  MatrixBF16 place_rows16(const MatrixBF16& m) {
    const Key key{m.data, -2, 0};
    if (auto it = copies_.find(key); it != copies_.end())
      return MatrixBF16{static_cast<const bf16_t*>(it->second), m.rows, m.cols, m.cols, BF16Layout::Rows16};
    std::vector<bf16_t> packed(static_cast<size_t>(bf16_rows16_elements(m)));
    pack_bf16_rows16(m, packed.data());
    void* d = alloc(key, packed.size() * sizeof(bf16_t));
    mem_.upload(d, packed.data(), packed.size() * sizeof(bf16_t));
    return MatrixBF16{static_cast<const bf16_t*>(d), m.rows, m.cols, m.cols, BF16Layout::Rows16};
  }

  // m rewritten as Rows16 on the host, then uploaded; keyed by m's own bytes (rows −3: not a plain copy).
  MatrixQ8 place_rows16(const MatrixQ8& m) {
    const Key code_key{m.codes, -3, 0}, scale_key{m.scales, -3, 0};
    if (auto c = copies_.find(code_key), s = copies_.find(scale_key); c != copies_.end() && s != copies_.end())
      return MatrixQ8{static_cast<const uint8_t*>(c->second), static_cast<const float*>(s->second), m.rows, m.cols, Q8Layout::Rows16};
    std::vector<uint8_t> codes(static_cast<size_t>(q8_rows16_code_bytes(m)));
    std::vector<float> scales(static_cast<size_t>(q8_rows16_scale_count(m)));
    pack_q8_rows16(m, codes.data(), scales.data());
    void* dc = alloc(code_key, codes.size());
    mem_.upload(dc, codes.data(), codes.size());
    void* ds = alloc(scale_key, scales.size() * sizeof(float));
    mem_.upload(ds, scales.data(), scales.size() * sizeof(float));
    return MatrixQ8{static_cast<const uint8_t*>(dc), static_cast<const float*>(ds), m.rows, m.cols, Q8Layout::Rows16};
  }

  const DeviceMemory& mem_;
  WeightLayouts layouts_;
  std::map<Key, void*> copies_;
  std::deque<std::vector<ExpertProj>> tables_;
};

}  // namespace

std::shared_ptr<const ModelWeights> place_weights(std::shared_ptr<const ModelWeights> host, const DeviceMemory& memory,
                                                  WeightLayouts layouts) {
  if (memory.host_is_device) return host;
  auto store = std::make_shared<DeviceStore>(memory, layouts);
  auto w = std::make_shared<ModelWeights>(*host);  // config, shard and the layer structure; views re-pointed below
  w->embed = store->place(host->embed);
  w->lm_head = store->place(host->lm_head, host->lm_head_q8);
  w->lm_head_q8 = store->place(host->lm_head_q8);
  w->final_norm = store->place(host->final_norm);
  for (LayerWeights& l : w->layers) {
    AttentionWeights& a = l.attn;
    a.norm = store->place(a.norm);
    a.q = store->place(a.q);
    a.k = store->place(a.k);
    a.v = store->place(a.v);
    a.o = store->place(a.o);
    a.sinks = store->place(a.sinks);
    MoEWeights& m = l.moe;
    m.norm = store->place(m.norm);
    m.router = store->place(m.router);
    m.local_of_global = store->place(m.local_of_global);
    for (Expert& x : m.experts) {
      x.w1 = store->place(x.w1);
      x.b1 = store->place(x.b1);
      x.w2 = store->place(x.w2);
      x.b2 = store->place(x.b2);
    }
    m.w1_table = store->place(store->keep(projections(m.experts, &Expert::w1, &Expert::b1)));
    m.w2_table = store->place(store->keep(projections(m.experts, &Expert::w2, &Expert::b2)));
  }
  w->checkpoint = nullptr;  // nothing here points into the mapping any more
  w->storage = std::move(store);
  return w;
}

}  // namespace gptoss
