// gloo.cpp — the CPU transport: Gloo over TCP, ranks meeting through a rendezvous store
// (comm/rendezvous.h). Gloo's per-operation timeout is the watchdog: a peer that died resets the TCP
// connection (the collective fails at once: peer_lost), a peer that hangs makes it fail after the
// timeout (timeout). Gloo throws one exception type for both, so the kind is told by the time spent.
#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/alltoall.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

#include "communicator.h"
#include "rendezvous.h"

namespace gptoss::comm {

namespace {

using Clock = std::chrono::steady_clock;

class GlooCommunicator final : public Communicator {
 public:
  GlooCommunicator(std::shared_ptr<gloo::rendezvous::Context> ctx, std::chrono::milliseconds timeout)
      : ctx_(std::move(ctx)), timeout_(timeout) {}

  int rank() const override { return ctx_->rank; }
  int world() const override { return ctx_->size; }
  std::chrono::milliseconds timeout() const override { return timeout_; }

  void sum(float* data, int64_t count) override {
    guarded("all-reduce", [&] {
      gloo::AllreduceOptions o(ctx_);
      o.setOutput(data, static_cast<size_t>(count));
      o.setReduceFunction(static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
      o.setTag(next_tag());
      o.setTimeout(timeout_);
      gloo::allreduce(o);
    });
  }

  void broadcast(void* data, int64_t bytes, int root) override {
    check(root >= 0 && root < ctx_->size, gptoss_status_invalid_argument, "broadcast: root " + std::to_string(root) + " is not a rank");
    guarded("broadcast", [&] {
      gloo::BroadcastOptions o(ctx_);
      o.setOutput(static_cast<uint8_t*>(data), static_cast<size_t>(bytes));
      o.setRoot(root);
      o.setTag(next_tag());
      o.setTimeout(timeout_);
      gloo::broadcast(o);
    });
  }

  void allgather(const void* in, void* out, int64_t bytes) override {
    guarded("all-gather", [&] {
      gloo::AllgatherOptions o(ctx_);
      o.setInput(const_cast<uint8_t*>(static_cast<const uint8_t*>(in)), static_cast<size_t>(bytes));
      o.setOutput(static_cast<uint8_t*>(out), static_cast<size_t>(bytes) * ctx_->size);
      o.setTag(next_tag());
      o.setTimeout(timeout_);
      gloo::allgather(o);
    });
  }

  void all_to_all(const void* in, void* out, int64_t bytes) override {
    guarded("all-to-all", [&] {
      gloo::AlltoallOptions o(ctx_);
      o.setInput(const_cast<uint8_t*>(static_cast<const uint8_t*>(in)), static_cast<size_t>(bytes) * ctx_->size);
      o.setOutput(static_cast<uint8_t*>(out), static_cast<size_t>(bytes) * ctx_->size);
      o.setTag(next_tag());
      o.setTimeout(timeout_);
      gloo::alltoall(o);
    });
  }

  void barrier() override {
    guarded("barrier", [&] {
      gloo::BarrierOptions o(ctx_);
      o.setTag(next_tag());
      o.setTimeout(timeout_);
      gloo::barrier(o);
    });
  }

  void abort(const std::string& reason) override {
    std::lock_guard lock(mu_);
    if (failed_.empty()) failed_ = reason.empty() ? "aborted" : reason;
  }

 private:
  template <typename F>
  void guarded(const char* what, F&& f) {
    {
      std::lock_guard lock(mu_);
      if (!failed_.empty()) fail_comm(Failure::aborted, std::string(what) + ": the communicator failed earlier: " + failed_);
    }
    const auto started = Clock::now();
    try {
      f();
    } catch (const std::exception& e) {
      // Gloo waits exactly the timeout before giving up; anything sooner is a broken connection.
      const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
      const bool timed_out = waited + std::chrono::milliseconds(50) >= timeout_;
      const std::string where = std::string(what) + " failed on rank " + std::to_string(ctx_->rank) + " of " + std::to_string(ctx_->size);
      const std::string msg = timed_out ? where + ": a peer did not answer within the " + std::to_string(timeout_.count()) + " ms timeout: " + e.what()
                                        : where + " after " + std::to_string(waited.count()) + " ms: a peer's connection broke: " + e.what();
      abort(msg);
      fail_comm(timed_out ? Failure::timeout : Failure::peer_lost, msg);
    }
  }

  // Every collective gets its own tag so a late message of one can never be read by the next.
  uint32_t next_tag() { return tag_++ & 0x7fffffff; }

  std::shared_ptr<gloo::rendezvous::Context> ctx_;
  std::chrono::milliseconds timeout_;
  std::atomic<uint32_t> tag_{1};
  std::mutex mu_;
  std::string failed_;
};

// Gloo's stores wait 30 s for a key whatever the context's timeout: this view bounds every wait by ours,
// so a rank whose peer never arrives (it died after the group formed) gives up within the watchdog.
class TimeoutStore final : public gloo::rendezvous::Store {
 public:
  TimeoutStore(gloo::rendezvous::Store& inner, std::chrono::milliseconds timeout) : inner_(inner), timeout_(timeout) {}
  void set(const std::string& key, const std::vector<char>& data) override { inner_.set(key, data); }
  std::vector<char> get(const std::string& key) override {
    inner_.wait({key}, timeout_);
    return inner_.get(key);
  }
  void wait(const std::vector<std::string>& keys) override { inner_.wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override {
    inner_.wait(keys, std::min(timeout, timeout_));
  }

 private:
  gloo::rendezvous::Store& inner_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

std::unique_ptr<Communicator> connect_gloo(int rank, int world, const std::string& rendezvous, std::chrono::milliseconds timeout,
                                           const std::string& interface_host) {
  check(world >= 1 && rank >= 0 && rank < world, gptoss_status_invalid_argument,
        "communicator: rank " + std::to_string(rank) + " must be in [0, " + std::to_string(world) + ")");
  check(timeout.count() > 0, gptoss_status_invalid_argument, "communicator: the timeout must be positive");
  std::unique_ptr<gloo::rendezvous::Store> store = open_rendezvous(rendezvous);  // bad specs throw invalid_argument
  try {
    gloo::transport::tcp::attr attr;
    attr.hostname = interface_host;
    auto device = gloo::transport::tcp::CreateDevice(attr);
    auto ctx = std::make_shared<gloo::rendezvous::Context>(rank, world);
    ctx->setTimeout(timeout);
    TimeoutStore bounded(*store, timeout);
    ctx->connectFullMesh(bounded, device);
    return std::make_unique<GlooCommunicator>(std::move(ctx), timeout);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail_comm(Failure::rendezvous, "communicator: rank " + std::to_string(rank) + " of " + std::to_string(world) +
                                       " could not join through " + rendezvous + " within " + std::to_string(timeout.count()) +
                                       " ms: " + e.what());
  }
}

void probe_gloo(TransportProbe& out) {
  out.gloo_compiled = true;
  try {
    gloo::transport::tcp::attr attr;
    attr.hostname = "127.0.0.1";
    auto device = gloo::transport::tcp::CreateDevice(attr);
    out.gloo_usable = device != nullptr;
  } catch (const std::exception& e) {
    out.gloo_usable = false;
    out.gloo_error = e.what();
  }
}

}  // namespace gptoss::comm
