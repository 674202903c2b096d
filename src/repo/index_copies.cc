// Index copies beside a store (index_copies.h, ADR 0017).
#include "repo/index_copies.h"

#include <nlohmann/json.hpp>

#include "index/index_copy.h"

namespace cairn {
namespace {

constexpr char kCopy[] = "index.copy";
constexpr char kNew[] = "index.copy.new";
constexpr char kOld[] = "index.copy.old";
constexpr char kStamp[] = "cairn-copy.json";

Result<std::string> Local(Storage& storage, const std::string& name) {
  auto p = storage.LocalPath(name);
  if (!p) return Status::Unsupported(storage.Describe(name) + ": index copies need local storage");
  return *p;
}

Status RemoveIfThere(Storage& storage, const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(bool there, storage.Exists(name));
  return there ? storage.RemoveAll(name) : Status::Ok();
}

// The commits a complete copy holds; nullopt when `name` is not a complete copy.
Result<std::optional<uint64_t>> Stamp(Storage& storage, const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(bool there, storage.Exists(JoinStorageName(name, kStamp)));
  if (!there) return std::optional<uint64_t>();
  CAIRN_ASSIGN_OR_RETURN(std::string text, storage.ReadFile(JoinStorageName(name, kStamp), 4096));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("commits") || !j["commits"].is_number_unsigned())
    return std::optional<uint64_t>();
  return std::optional<uint64_t>(j["commits"].get<uint64_t>());
}

}  // namespace

Status SaveIndexCopy(Storage& storage, const std::string& store_dir, uint64_t commits) {
  const std::string index = JoinStorageName(store_dir, "index");
  const std::string copy = JoinStorageName(store_dir, kCopy);
  const std::string fresh = JoinStorageName(store_dir, kNew);
  const std::string old = JoinStorageName(store_dir, kOld);
  CAIRN_ASSIGN_OR_RETURN(std::string from, Local(storage, index));
  CAIRN_ASSIGN_OR_RETURN(std::string to, Local(storage, fresh));
  CAIRN_RETURN_IF_ERROR(RemoveIfThere(storage, fresh));
  CAIRN_RETURN_IF_ERROR(storage.CreateDir(fresh));  // durable in the store before it is named
  CAIRN_ASSIGN_OR_RETURN(uint64_t bytes, CopyIndexFiles(from, to));
  (void)bytes;
  nlohmann::json j = {{"commits", commits}};
  // Written last: a copy without it was interrupted and is never used.
  CAIRN_RETURN_IF_ERROR(storage.WriteFile(JoinStorageName(fresh, kStamp), j.dump() + "\n"));
  CAIRN_RETURN_IF_ERROR(RemoveIfThere(storage, old));
  CAIRN_ASSIGN_OR_RETURN(bool had, storage.Exists(copy));
  if (had) CAIRN_RETURN_IF_ERROR(storage.Rename(copy, old));
  CAIRN_RETURN_IF_ERROR(storage.Rename(fresh, copy));
  return RemoveIfThere(storage, old);
}

Result<std::optional<IndexCopy>> FindIndexCopy(Storage& storage, const std::string& store_dir) {
  for (const char* leaf : {kCopy, kNew, kOld}) {
    const std::string name = JoinStorageName(store_dir, leaf);
    CAIRN_ASSIGN_OR_RETURN(std::optional<uint64_t> commits, Stamp(storage, name));
    if (commits) return std::optional<IndexCopy>(IndexCopy{name, *commits});
  }
  return std::optional<IndexCopy>();
}

Status RestoreIndexCopy(Storage& storage, const std::string& store_dir, const IndexCopy& copy) {
  CAIRN_ASSIGN_OR_RETURN(std::string from, Local(storage, copy.name));
  CAIRN_ASSIGN_OR_RETURN(std::string to, Local(storage, JoinStorageName(store_dir, "index")));
  CAIRN_RETURN_IF_ERROR(storage.CreateDir(JoinStorageName(store_dir, "index")));
  CAIRN_ASSIGN_OR_RETURN(uint64_t bytes, CopyIndexFiles(from, to));
  (void)bytes;
  // The stamp came along; it means nothing in the index itself.
  return storage.RemoveFile(JoinStorageName(JoinStorageName(store_dir, "index"), kStamp));
}

}  // namespace cairn
