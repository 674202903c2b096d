// BlockMap: cached, paged block map of one vdisk (block_map.h).
#include "vdisk/block_map.h"

#include "util/coding.h"

namespace cairn {

Result<BlockMapPage> BlockMap::LoadPage(uint64_t page) const {
  const std::string key = keys::BlockMap(id_, page);
  const std::string what = "block map page " + std::to_string(page) + " of vdisk '" + name_ + "'";
  CAIRN_ASSIGN_OR_RETURN(auto row, rows_->Get(key, what));
  if (!row) return BlockMapPage();
  return BlockMapPage::Decode(*row, what);
}

Result<BlockMap::Slot*> BlockMap::Load(uint64_t page, std::unique_lock<std::mutex>& lk) {
  auto it = slots_.find(page);
  if (it != slots_.end()) {
    Touch(page, it->second);
    return &it->second;
  }
  lk.unlock();
  auto loaded = LoadPage(page);
  lk.lock();
  if (!loaded.ok()) return loaded.status();
  it = slots_.find(page);  // another thread may have loaded it meanwhile
  if (it == slots_.end()) {
    // A page with no row (no block of it mapped: most pages of a large, sparse vdisk or of a
    // clone's empty template) shares one empty page instead of holding 4 KiB of its own; Set
    // copies it before changing it, as it does any shared page.
    static const std::shared_ptr<BlockMapPage> kEmptyPage = std::make_shared<BlockMapPage>();
    Slot s;
    s.page = loaded->empty() ? kEmptyPage : std::make_shared<BlockMapPage>(std::move(*loaded));
    lru_.push_front(page);
    s.lru = lru_.begin();
    it = slots_.emplace(page, std::move(s)).first;
    Evict();
  }
  return &it->second;
}

void BlockMap::Touch(uint64_t page, Slot& slot) {
  if (slot.dirty) return;
  lru_.erase(slot.lru);
  lru_.push_front(page);
  slot.lru = lru_.begin();
}

void BlockMap::Evict() {
  while (lru_.size() > cache_pages_) {
    uint64_t victim = lru_.back();
    lru_.pop_back();
    slots_.erase(victim);
  }
}

Result<std::optional<BlockEntry>> BlockMap::Get(uint64_t lba) {
  std::unique_lock lk(mu_);
  CAIRN_ASSIGN_OR_RETURN(Slot * s, Load(lba / kPageBlocks, lk));
  return s->page->Get(lba % kPageBlocks);
}

Status BlockMap::GetRange(uint64_t lba, uint64_t count,
                          std::vector<std::optional<BlockEntry>>& out) {
  out.resize(count);
  std::unique_lock lk(mu_);
  for (uint64_t done = 0; done < count;) {
    const uint64_t at = (lba + done) % kPageBlocks;
    const uint64_t n = std::min(count - done, kPageBlocks - at);
    CAIRN_ASSIGN_OR_RETURN(Slot * s, Load((lba + done) / kPageBlocks, lk));
    for (uint64_t k = 0; k < n; k++) out[done + k] = s->page->Get(at + k);
    done += n;
  }
  return Status::Ok();
}

Result<std::optional<BlockEntry>> BlockMap::Set(uint64_t lba, std::optional<BlockEntry> e) {
  std::unique_lock lk(mu_);
  const uint64_t page = lba / kPageBlocks;
  CAIRN_ASSIGN_OR_RETURN(Slot * s, Load(page, lk));
  if (!s->dirty) {
    lru_.erase(s->lru);
    s->dirty = true;
    dirty_++;
  }
  s->version++;
  // A commit may be writing this page out: it keeps the version it took; this one changes.
  if (s->page.use_count() > 1) s->page = std::make_shared<BlockMapPage>(*s->page);
  return s->page->Set(lba % kPageBlocks, e);
}

BlockMap::Dirty BlockMap::TakeDirty() {
  std::lock_guard lk(mu_);
  Dirty d;
  d.pages.reserve(dirty_);
  d.versions.reserve(dirty_);
  for (const auto& [page, s] : slots_) {
    if (!s.dirty) continue;
    // Shared, not copied: copying every dirty page (thousands of 4 KiB pages) at each commit
    // was most of a busy NBD server's peak memory. Set copies a page still shared.
    d.pages.emplace_back(page, s.page);
    d.versions.push_back(s.version);
  }
  return d;
}

Status BlockMap::AddRows(const Dirty& dirty, WriteBatch& batch) const {
  for (const auto& [page, p] : dirty.pages) {
    const std::string key = keys::BlockMap(id_, page);
    if (p->empty()) {
      batch.Delete(key);
      continue;
    }
    CAIRN_ASSIGN_OR_RETURN(std::string row, rows_->Seal(key, p->Encode()));
    batch.Put(key, std::move(row));
  }
  return Status::Ok();
}

void BlockMap::Committed(const Dirty& dirty) {
  std::lock_guard lk(mu_);
  for (size_t i = 0; i < dirty.pages.size(); i++) {
    auto it = slots_.find(dirty.pages[i].first);
    if (it == slots_.end() || !it->second.dirty || it->second.version != dirty.versions[i])
      continue;  // changed again since: still dirty
    it->second.dirty = false;
    dirty_--;
    lru_.push_front(it->first);
    it->second.lru = lru_.begin();
  }
  Evict();
}

size_t BlockMap::dirty_pages() const {
  std::lock_guard lk(mu_);
  return dirty_;
}

Status BlockMap::ForEachStoredPage(
    const std::function<Status(uint64_t, const BlockMapPage&)>& fn) const {
  const std::string prefix = keys::BlockMapPrefix(id_);
  Status inner;
  CAIRN_RETURN_IF_ERROR(index_->Scan(prefix, [&](std::string_view k, std::string_view v) {
    if (k.size() != prefix.size() + 8) {
      inner = Status::Corruption("vdisk '" + name_ + "': a block map key is malformed");
      return false;
    }
    uint64_t page = DecodeU64BE(k.data() + prefix.size());
    const std::string what = "block map page " + std::to_string(page) + " of vdisk '" + name_ + "'";
    auto plain = rows_->Open(k, v, what);
    if (!plain.ok()) {
      inner = plain.status();
      return false;
    }
    auto p = BlockMapPage::Decode(*plain, what);
    inner = p.ok() ? fn(page, *p) : p.status();
    return inner.ok();
  }));
  return inner;
}

}  // namespace cairn
