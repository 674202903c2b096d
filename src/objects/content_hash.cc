// ContentHash (content_hash.h): 1 MiB blocks of a put's content hashed on the pool and joined
// in order, or the whole content hashed on one thread for SHA-256 stores.
#include "objects/content_hash.h"

#include <algorithm>

namespace cairn {

ContentHash::ContentHash(const Hasher& hasher, ThreadPool& pool, std::function<void(size_t)> hold,
                         std::function<void(size_t)> release)
    : pool_(pool), hold_(std::move(hold)), release_(std::move(release)), tree_(hasher.Tree()) {
  if (!tree_) {
    stream_ = hasher.Stream();
    stream_thread_.emplace(1);
  }
}

ContentHash::~ContentHash() {
  for (Tasks& t : tasks_) {
    for (auto& f : t.blocks)
      if (f.valid()) f.wait();
    if (t.stream.valid()) t.stream.wait();
  }
  if (Held()) release_(at_slab_);
}

void ContentHash::SubmitBlock(Tasks& t, const uint8_t* p,
                              std::shared_ptr<std::vector<uint8_t>> owned) {
  const Blake3Tree* tree = tree_.get();
  const uint64_t index = next_block_++;
  if (owned) p = owned->data();
  t.blocks.push_back(pool_.Submit([tree, p, owned = std::move(owned), index] {
    return tree->HashBlock({p, Blake3Tree::kBlockBytes}, index);
  }));
}

void ContentHash::Add(std::span<const uint8_t> data, size_t slab) {
  Tasks& t = tasks_.emplace_back();
  if (!tree_) {
    StreamHasher* s = stream_.get();
    t.stream = stream_thread_->Submit([s, data] { s->Update(data); });
    return;
  }
  constexpr size_t kB = Blake3Tree::kBlockBytes;
  const uint8_t* p = data.data();
  size_t n = data.size();
  if (pending_) {
    // The block begun earlier: its bytes are beside these (same slab) or get copied.
    if (Held() && (at_ + pending_ != p || at_slab_ != slab)) {
      carry_.reserve(kB);
      carry_.assign(at_, at_ + pending_);
      release_(at_slab_);
    }
    const size_t take = std::min(kB - pending_, n);
    if (!carry_.empty()) carry_.insert(carry_.end(), p, p + take);
    pending_ += take;
    p += take;
    n -= take;
    if (pending_ == kB) {
      if (!carry_.empty()) {
        SubmitBlock(t, nullptr, std::make_shared<std::vector<uint8_t>>(std::move(carry_)));
        carry_.clear();
      } else {
        SubmitBlock(t, at_, nullptr);  // this group holds the slab until its tasks are done
        release_(at_slab_);
      }
      pending_ = 0;
    }
  }
  for (; n >= kB; p += kB, n -= kB) SubmitBlock(t, p, nullptr);
  if (n) {  // the start of the next block
    at_ = p;
    at_slab_ = slab;
    pending_ = n;
    hold_(slab);
  }
}

void ContentHash::Drain() {
  Tasks& t = tasks_.front();
  for (auto& f : t.blocks) tree_->Push(f.get());
  if (t.stream.valid()) t.stream.get();
  tasks_.pop_front();
}

Digest ContentHash::Finish() {
  while (!tasks_.empty()) Drain();
  if (!tree_) return stream_->Finish();
  std::span<const uint8_t> tail;
  if (pending_) tail = Held() ? std::span(at_, pending_) : std::span<const uint8_t>(carry_);
  Digest d = tree_->Finish(tail);
  if (Held()) release_(at_slab_);
  pending_ = 0;
  return d;
}

}  // namespace cairn
