// BlockMap: a vdisk's map from block number (LBA) to chunk id (or group slot), kept in index pages
// of kPageBlocks entries (vdisk_format.h) and cached in memory. Clean pages are evicted least
// recently used beyond a page budget; dirty pages stay until a commit writes them. A 100 GiB
// vdisk of 4 KiB blocks has 204,800 pages; the cache holds a few thousand (16 MiB by default),
// so memory stays bounded whatever the vdisk's size.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "chunkstore/sealed_rows.h"
#include "index/index.h"
#include "vdisk/vdisk_format.h"

namespace cairn {

class BlockMap {
 public:
  // `rows`: the store's row sealing; `name`: the vdisk's name, for messages; `cache_pages`:
  // clean pages kept in memory.
  BlockMap(Index* index, const SealedRows* rows, VdiskId id, std::string name, size_t cache_pages)
      : index_(index),
        rows_(rows),
        id_(id),
        name_(std::move(name)),
        cache_pages_(std::max<size_t>(cache_pages, 16)) {}

  // The entry of block `lba` (its chunk, or its group and slot), or nullopt for a hole.
  Result<std::optional<BlockEntry>> Get(uint64_t lba);
  // The entries of blocks [lba, lba + count) into out[0, count), one lock per page.
  Status GetRange(uint64_t lba, uint64_t count, std::vector<std::optional<BlockEntry>>& out);
  // Sets the entry of block `lba` and returns the previous one. The page becomes dirty.
  Result<std::optional<BlockEntry>> Set(uint64_t lba, std::optional<BlockEntry> e);

  // The pages dirty now, with the versions that the commit writing them covers. The pages are
  // shared with the cache, not copied: a Set to a page still held here copies it first.
  struct Dirty {
    std::vector<std::pair<uint64_t, std::shared_ptr<const BlockMapPage>>> pages;
    std::vector<uint64_t> versions;  // one per page
  };
  Dirty TakeDirty();
  // Puts (or, for empty pages, deletes) the rows of `dirty` into `batch`.
  Status AddRows(const Dirty& dirty, WriteBatch& batch) const;
  // The commit carrying `dirty` is durable: pages not changed since become clean.
  void Committed(const Dirty& dirty);
  size_t dirty_pages() const;

  // Every page that has a row in the index (committed state), in page order: fn(page no, page).
  Status ForEachStoredPage(const std::function<Status(uint64_t, const BlockMapPage&)>& fn) const;
  // The committed page `page` (empty when it has no row).
  Result<BlockMapPage> LoadPage(uint64_t page) const;

 private:
  struct Slot {
    // Never null once loaded; shared (read-only) with a Dirty being committed, if any.
    std::shared_ptr<BlockMapPage> page;
    uint64_t version = 0;  // +1 at every Set
    bool dirty = false;
    std::list<uint64_t>::iterator lru;  // valid when clean
  };
  // The slot of `page`, loaded from the index when absent; mu_ held on entry and return
  // (released while reading the index).
  Result<Slot*> Load(uint64_t page, std::unique_lock<std::mutex>& lk);
  void Touch(uint64_t page, Slot& slot);  // mu_ held
  void Evict();                           // mu_ held

  Index* index_;
  const SealedRows* rows_;
  VdiskId id_;
  std::string name_;
  size_t cache_pages_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Slot> slots_;
  std::list<uint64_t> lru_;  // clean pages, most recent at the front
  size_t dirty_ = 0;
};

}  // namespace cairn
