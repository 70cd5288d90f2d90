// gloo.cpp — the CPU transport: Gloo over TCP, ranks meeting through a file store (local ranks) or the
// cluster's Redis. Gloo's per-operation timeout is the watchdog: a peer that died resets the TCP
// connection (the collective fails at once), a peer that hangs makes it fail after the timeout.
#include <atomic>
#include <exception>
#include <mutex>

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/config.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/prefix_store.h>
#if GLOO_USE_REDIS
#include <gloo/rendezvous/redis_store.h>
#endif
#include <gloo/transport/tcp/device.h>

#include "../core/error.h"
#include "communicator.h"

namespace gptoss::comm {

namespace {

// "redis://host:port/?prefix=p" → host, port, prefix (no URL library: the orchestrator writes this form).
struct RedisSpec {
  std::string host;
  int port = 6379;
  std::string prefix;
};

std::string url_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

RedisSpec parse_redis(const std::string& url) {
  RedisSpec r;
  std::string rest = url.substr(std::string("redis://").size());
  const size_t q = rest.find('?');
  std::string query = q == std::string::npos ? "" : rest.substr(q + 1);
  std::string hostport = rest.substr(0, std::min(rest.find('/'), q));
  const size_t at = hostport.rfind('@');  // credentials are not supported by Gloo's store: refuse them
  check(at == std::string::npos, gptoss_status_invalid_argument, "rendezvous: Redis credentials in the URL are not supported");
  const size_t colon = hostport.rfind(':');
  r.host = colon == std::string::npos ? hostport : hostport.substr(0, colon);
  if (colon != std::string::npos) r.port = std::stoi(hostport.substr(colon + 1));
  const size_t p = query.find("prefix=");
  if (p != std::string::npos) r.prefix = url_decode(query.substr(p + 7, query.find('&', p) - (p + 7)));
  return r;
}

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
      check(failed_.empty(), gptoss_status_communicator_error, std::string(what) + ": the communicator failed earlier: " + failed_);
    }
    try {
      f();
    } catch (const std::exception& e) {
      const std::string msg = std::string(what) + " failed on rank " + std::to_string(ctx_->rank) + " of " +
                              std::to_string(ctx_->size) + " (a peer died or stopped answering within " +
                              std::to_string(timeout_.count()) + " ms): " + e.what();
      abort(msg);
      fail(gptoss_status_communicator_error, msg);
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

}  // namespace

std::unique_ptr<Communicator> connect_gloo(int rank, int world, const std::string& rendezvous, std::chrono::milliseconds timeout,
                                           const std::string& interface_host) {
  check(world >= 1 && rank >= 0 && rank < world, gptoss_status_invalid_argument,
        "communicator: rank " + std::to_string(rank) + " must be in [0, " + std::to_string(world) + ")");
  check(timeout.count() > 0, gptoss_status_invalid_argument, "communicator: the timeout must be positive");
  try {
    gloo::transport::tcp::attr attr;
    attr.hostname = interface_host;
    auto device = gloo::transport::tcp::CreateDevice(attr);
    auto ctx = std::make_shared<gloo::rendezvous::Context>(rank, world);
    ctx->setTimeout(timeout);
    if (rendezvous.rfind("file://", 0) == 0) {
      gloo::rendezvous::FileStore store(rendezvous.substr(7));
      ctx->connectFullMesh(store, device);
    } else if (rendezvous.rfind("redis://", 0) == 0) {
#if GLOO_USE_REDIS
      const RedisSpec r = parse_redis(rendezvous);
      gloo::rendezvous::RedisStore redis(r.host, r.port);
      gloo::rendezvous::PrefixStore store(r.prefix, redis);
      ctx->connectFullMesh(store, device);
#else
      fail(gptoss_status_unsupported_argument, "rendezvous: this Gloo was built without Redis support");
#endif
    } else {
      fail(gptoss_status_invalid_argument, "rendezvous: expected file:///dir or redis://host:port/?prefix=..., got '" + rendezvous + "'");
    }
    return std::make_unique<GlooCommunicator>(std::move(ctx), timeout);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(gptoss_status_communicator_error, "communicator: rank " + std::to_string(rank) + " of " + std::to_string(world) +
                                               " could not join through " + rendezvous + ": " + e.what());
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
