#include "lockstep.h"

#include "../core/error.h"

namespace gptoss::lockstep {

void send(comm::Communicator& comm, PlanKind kind, const std::vector<int32_t>& tokens, const std::vector<SeqChunk>& seqs) {
  std::vector<int32_t> payload(tokens);
  for (const SeqChunk& q : seqs) {
    payload.insert(payload.end(), {q.num_tokens, q.pos_begin, q.all_logits ? 1 : 0, static_cast<int32_t>(q.full_blocks.size()),
                                   static_cast<int32_t>(q.sliding_blocks.size())});
    payload.insert(payload.end(), q.full_blocks.begin(), q.full_blocks.end());
    payload.insert(payload.end(), q.sliding_blocks.begin(), q.sliding_blocks.end());
  }
  int64_t header[4] = {static_cast<int64_t>(kind), static_cast<int64_t>(tokens.size()), static_cast<int64_t>(seqs.size()),
                       static_cast<int64_t>(payload.size())};
  comm.broadcast(header, sizeof header, 0);
  if (!payload.empty()) comm.broadcast(payload.data(), static_cast<int64_t>(payload.size() * sizeof(int32_t)), 0);
}

PlanKind receive(comm::Communicator& comm, std::vector<int32_t>& tokens, std::vector<SeqChunk>& seqs) {
  int64_t header[4] = {};
  comm.broadcast(header, sizeof header, 0);
  const auto kind = static_cast<PlanKind>(header[0]);
  check(kind == PlanKind::noop || kind == PlanKind::step || kind == PlanKind::stop, gptoss_status_communicator_error,
        "lockstep: unknown plan kind " + std::to_string(header[0]));
  check(header[1] >= 0 && header[2] >= 0 && header[3] >= header[1], gptoss_status_communicator_error, "lockstep: malformed plan header");
  std::vector<int32_t> payload(static_cast<size_t>(header[3]));
  if (!payload.empty()) comm.broadcast(payload.data(), static_cast<int64_t>(payload.size() * sizeof(int32_t)), 0);
  tokens.assign(payload.begin(), payload.begin() + header[1]);
  seqs.clear();
  size_t at = static_cast<size_t>(header[1]);
  for (int64_t i = 0; i < header[2]; ++i) {
    check(at + 5 <= payload.size(), gptoss_status_communicator_error, "lockstep: truncated plan");
    SeqChunk q{payload[at], payload[at + 1], {}, {}, payload[at + 2] != 0};
    const size_t nf = static_cast<size_t>(payload[at + 3]), ns = static_cast<size_t>(payload[at + 4]);
    at += 5;
    check(at + nf + ns <= payload.size(), gptoss_status_communicator_error, "lockstep: truncated plan");
    q.full_blocks.assign(payload.begin() + at, payload.begin() + at + nf);
    q.sliding_blocks.assign(payload.begin() + at + nf, payload.begin() + at + nf + ns);
    at += nf + ns;
    seqs.push_back(std::move(q));
  }
  return kind;
}

}  // namespace gptoss::lockstep
