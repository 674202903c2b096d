// SealedRows (sealed_rows.h).
#include "chunkstore/sealed_rows.h"

#include <algorithm>

namespace cairn {
namespace {

constexpr size_t kResealBatchRows = 4096;

}  // namespace

Result<std::string> SealedRows::Seal(const std::string& key, std::string plain) const {
  if (!crypto_) return plain;
  return crypto_->SealRow(key, plain);
}

Result<std::string> SealedRows::Open(std::string_view key, std::string_view value,
                                     const std::string& what) const {
  if (!crypto_) return std::string(value);
  auto plain = crypto_->OpenRow(key, value);
  if (!plain.ok()) return Status::Corruption(what + ": " + plain.status().message());
  return plain;
}

Result<std::optional<std::string>> SealedRows::Get(const std::string& key,
                                                   const std::string& what) const {
  CAIRN_ASSIGN_OR_RETURN(auto v, index_->Get(key));
  if (!v) return v;
  CAIRN_ASSIGN_OR_RETURN(std::string plain, Open(key, *v, what));
  return std::optional<std::string>(std::move(plain));
}

Result<uint64_t> SealedRows::ResealBatch(const std::vector<std::string>& keys) {
  const uint32_t current = crypto_->current_version();
  uint64_t n = 0;
  auto txn = chunks_->Begin();
  // Read again under the commit lock: a row changed or removed meanwhile is taken as it is now.
  auto rows = [&](WriteBatch& batch) -> Status {
    CAIRN_ASSIGN_OR_RETURN(auto values, index_->MultiGet(keys));
    for (size_t i = 0; i < keys.size(); i++) {
      if (!values[i]) continue;
      auto ver = crypto::StoreCrypto::RowKeyVersion(*values[i]);
      if (ver && *ver == current) continue;
      CAIRN_ASSIGN_OR_RETURN(std::string plain, Open(keys[i], *values[i], "metadata row"));
      CAIRN_ASSIGN_OR_RETURN(std::string sealed, Seal(keys[i], std::move(plain)));
      batch.Put(keys[i], std::move(sealed));
      n++;
    }
    return Status::Ok();
  };
  CAIRN_RETURN_IF_ERROR(txn->Commit(rows));
  return n;
}

Result<uint64_t> SealedRows::Reseal(const std::vector<char>& prefixes) {
  if (!crypto_) return uint64_t{0};
  const uint32_t current = crypto_->current_version();
  uint64_t total = 0;
  for (char kind : prefixes) {
    std::vector<std::string> due;
    CAIRN_RETURN_IF_ERROR(
        index_->Scan(std::string(1, kind), [&](std::string_view k, std::string_view v) {
          auto ver = crypto::StoreCrypto::RowKeyVersion(v);
          if (!ver || *ver != current) due.emplace_back(k);
          return true;
        }));
    for (size_t i = 0; i < due.size(); i += kResealBatchRows) {
      std::vector<std::string> batch(due.begin() + i,
                                     due.begin() + std::min(due.size(), i + kResealBatchRows));
      CAIRN_ASSIGN_OR_RETURN(uint64_t n, ResealBatch(batch));
      total += n;
    }
  }
  return total;
}

Status SealedRows::CountKeyVersions(const std::vector<char>& prefixes,
                                    std::map<uint32_t, uint64_t>& counts) const {
  if (!crypto_) return Status::Ok();
  for (char kind : prefixes) {
    CAIRN_RETURN_IF_ERROR(
        index_->Scan(std::string(1, kind), [&](std::string_view, std::string_view v) {
          auto ver = crypto::StoreCrypto::RowKeyVersion(v);
          if (ver) counts[*ver]++;
          return true;
        }));
  }
  return Status::Ok();
}

}  // namespace cairn
