// rendezvous.cpp — the scheme registry and the two stores Gloo ships: a directory (FileStore) and
// Redis (RedisStore under a key prefix). Nothing here talks to peers; connect_gloo does.
#include "rendezvous.h"

#include <map>
#include <mutex>

#include <gloo/config.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/prefix_store.h>
#if GLOO_USE_REDIS
#include <gloo/rendezvous/redis_store.h>
#endif

#include "../core/error.h"
#include "communicator.h"

namespace gptoss::comm {

namespace {

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

#if GLOO_USE_REDIS
// A prefixed view that owns the store under it (Gloo's PrefixStore only borrows one).
class PrefixedRedisStore final : public gloo::rendezvous::Store {
 public:
  PrefixedRedisStore(const std::string& host, int port, const std::string& prefix)
      : redis_(std::make_unique<gloo::rendezvous::RedisStore>(host, port)), view_(prefix, *redis_) {}
  void set(const std::string& key, const std::vector<char>& data) override { view_.set(key, data); }
  std::vector<char> get(const std::string& key) override { return view_.get(key); }
  void wait(const std::vector<std::string>& keys) override { view_.wait(keys); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override { view_.wait(keys, timeout); }

 private:
  std::unique_ptr<gloo::rendezvous::RedisStore> redis_;
  gloo::rendezvous::PrefixStore view_;
};
#endif

// "host:port/?prefix=p" (the part after redis://; no URL library: the orchestrator writes this form).
std::unique_ptr<gloo::rendezvous::Store> open_redis(const std::string& rest) {
#if GLOO_USE_REDIS
  const size_t q = rest.find('?');
  const std::string query = q == std::string::npos ? "" : rest.substr(q + 1);
  const std::string hostport = rest.substr(0, std::min(rest.find('/'), q));
  // Credentials are not supported by Gloo's RedisStore: refuse them rather than drop them silently.
  check(hostport.find('@') == std::string::npos, gptoss_status_invalid_argument, "rendezvous: Redis credentials in the URL are not supported");
  const size_t colon = hostport.rfind(':');
  const std::string host = colon == std::string::npos ? hostport : hostport.substr(0, colon);
  int port = 6379;
  try {
    if (colon != std::string::npos) port = std::stoi(hostport.substr(colon + 1));
  } catch (const std::exception&) {
    fail(gptoss_status_invalid_argument, "rendezvous: bad Redis port in '" + hostport + "'");
  }
  check(!host.empty(), gptoss_status_invalid_argument, "rendezvous: the Redis URL names no host");
  std::string prefix;
  const size_t p = query.find("prefix=");
  if (p != std::string::npos) prefix = url_decode(query.substr(p + 7, query.find('&', p) - (p + 7)));
  return std::make_unique<PrefixedRedisStore>(host, port, prefix);
#else
  (void)rest;
  fail(gptoss_status_unsupported_argument, "rendezvous: this Gloo was built without Redis support");
#endif
}

struct Registry {
  std::mutex mu;
  std::map<std::string, StoreFactory> factories{
      {"file", [](const std::string& dir) { return std::make_unique<gloo::rendezvous::FileStore>(dir); }},
      {"redis", open_redis},
  };
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void register_rendezvous(const std::string& scheme, StoreFactory factory) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  r.factories[scheme] = std::move(factory);
}

std::unique_ptr<gloo::rendezvous::Store> open_rendezvous(const std::string& spec) {
  const size_t sep = spec.find("://");
  check(sep != std::string::npos && sep > 0 && sep + 3 < spec.size(), gptoss_status_invalid_argument,
        "rendezvous: expected scheme://..., e.g. file:///dir or redis://host:port/?prefix=..., got '" + spec + "'");
  StoreFactory factory;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    const auto it = r.factories.find(spec.substr(0, sep));
    check(it != r.factories.end(), gptoss_status_invalid_argument, "rendezvous: no store for scheme '" + spec.substr(0, sep) + "'");
    factory = it->second;
  }
  return factory(spec.substr(sep + 3));
}

std::string share_from_rank0(const std::string& spec, const std::string& key, int rank, std::chrono::milliseconds timeout,
                             const std::function<std::string()>& make) {
  std::unique_ptr<gloo::rendezvous::Store> store = open_rendezvous(spec);  // bad specs throw invalid_argument
  if (rank == 0) {
    const std::string bytes = make();
    store->set(key, std::vector<char>(bytes.begin(), bytes.end()));
    return bytes;
  }
  try {
    store->wait({key}, timeout);
    const std::vector<char> bytes = store->get(key);
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    fail_comm(Failure::rendezvous, "rendezvous: rank " + std::to_string(rank) + " did not get '" + key + "' from rank 0 through " +
                                       spec + " within " + std::to_string(timeout.count()) + " ms: " + e.what());
  }
}

}  // namespace gptoss::comm
