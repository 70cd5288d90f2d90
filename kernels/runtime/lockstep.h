// lockstep.h — the step plan the leader of an expert-parallel group broadcasts before each step, so
// that every rank runs the same forward on the same rows (its own heads and experts) in lockstep.
// Wire form: a fixed header {kind, tokens, sequences, payload ints}, then one int32 payload
// [tokens..., per sequence: num_tokens, pos_begin, all_logits, n_full, n_sliding, full..., sliding...].
#pragma once

#include <cstdint>
#include <vector>

#include "../comm/communicator.h"

namespace gptoss::lockstep {

enum class PlanKind : int64_t { noop = 0, step = 1, stop = 2 };

// Leader (rank 0).
void send(comm::Communicator& comm, PlanKind kind, const std::vector<int32_t>& tokens, const std::vector<SeqChunk>& seqs);
// Followers: blocks until the leader sends (bounded by the communicator's timeout).
PlanKind receive(comm::Communicator& comm, std::vector<int32_t>& tokens, std::vector<SeqChunk>& seqs);

}  // namespace gptoss::lockstep
