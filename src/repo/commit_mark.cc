// Commit counter row and commit mark file (commit_mark.h, ADR 0016).
#include "repo/commit_mark.h"

#include <nlohmann/json.hpp>

#include "index/keyspace.h"
#include "util/coding.h"

namespace cairn {
namespace {

constexpr std::string_view kMarkFile = "commit-mark.json";
constexpr size_t kMaxMarkBytes = 4096;

std::string CountKey() { return std::string(1, keyspace::kCommitCount); }

std::string EncodeCount(uint64_t n) {
  std::string v;
  PutU8(v, 1);
  PutU64(v, n);
  return v;
}

}  // namespace

Result<uint64_t> ReadCommitCount(Index& index) {
  CAIRN_ASSIGN_OR_RETURN(auto row, index.Get(CountKey()));
  if (!row) return uint64_t{0};
  if (row->size() != 9 || (*row)[0] != 1)
    return Status::Corruption(index.Describe() + ": the commit counter row does not decode");
  uint64_t n = 0;
  for (int i = 8; i >= 1; i--) n = (n << 8) | static_cast<uint8_t>((*row)[i]);
  return n;
}

Result<std::unique_ptr<CommitCounter>> CommitCounter::Wrap(std::unique_ptr<Index> inner) {
  CAIRN_ASSIGN_OR_RETURN(uint64_t n, ReadCommitCount(*inner));
  return std::unique_ptr<CommitCounter>(new CommitCounter(std::move(inner), n));
}

Status CommitCounter::Write(WriteBatch batch, bool sync) {
  std::lock_guard lk(mu_);
  batch.Put(CountKey(), EncodeCount(count_ + 1));
  Status s = inner().Write(std::move(batch), sync);
  if (!s.ok()) {
    failed_ = true;
    return s;
  }
  count_++;
  if (!sync) return s;
  durable_ = count_;
  const auto now = std::chrono::steady_clock::now();
  if (on_durable_ && !failed_ && now - last_call_ >= period_) {
    last_call_ = now;
    on_durable_(durable_);
  }
  return s;
}

std::optional<uint64_t> CommitCounter::durable() const {
  std::lock_guard lk(mu_);
  if (failed_) return std::nullopt;
  return durable_;
}

void CommitCounter::OnDurable(std::chrono::seconds period, std::function<void(uint64_t)> fn) {
  std::lock_guard lk(mu_);
  period_ = period;
  on_durable_ = std::move(fn);
}

Result<std::optional<uint64_t>> LoadCommitMark(Storage& storage, const std::string& store_dir) {
  const std::string name = JoinStorageName(store_dir, kMarkFile);
  auto text = storage.ReadFile(name, kMaxMarkBytes);
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound) return std::optional<uint64_t>();
    return text.status();
  }
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || j.value("format", 0) != 1 || !j.contains("commits") ||
      !j["commits"].is_number_unsigned())
    return Status::Corruption(storage.Describe(name) +
                              " does not parse: the store's commit mark is damaged (it only "
                              "guards the index; remove it if the index is known to be good)");
  return std::optional<uint64_t>(j["commits"].get<uint64_t>());
}

Status SaveCommitMark(Storage& storage, const std::string& store_dir, uint64_t commits) {
  nlohmann::ordered_json j;
  j["format"] = 1;
  j["commits"] = commits;
  return storage.WriteFile(JoinStorageName(store_dir, kMarkFile), j.dump() + "\n");
}

Status CheckCommitMark(Storage& storage, const std::string& store_dir, const std::string& label,
                       const std::string& index_where, uint64_t count,
                       std::optional<uint64_t> mark) {
  if (!mark || count >= *mark) return Status::Ok();
  return Status::Corruption(
      "the index of the " + label + " (" + index_where + ") is damaged: it has seen " +
      std::to_string(count) + " commits, but " +
      storage.Describe(JoinStorageName(store_dir, kMarkFile)) + " records " +
      std::to_string(*mark) + " as durable, so " + std::to_string(*mark - count) +
      " acknowledged commit(s) are missing (a damaged, truncated or deleted log, or an older "
      "copy of the index). Nothing was changed; the segments still hold their data. Restore "
      "the index from a backup, or rebuild it from the segments (cairn repair)");
}

}  // namespace cairn
