// Masking and unmasking the length fields of chunk record values (masked_records.h).
#include "chunkstore/masked_records.h"

#include "chunkstore/chunk_record.h"
#include "index/keyspace.h"

namespace cairn {
namespace {

bool IsChunkRow(std::string_view key) { return !key.empty() && key[0] == keyspace::kChunk; }

class MaskedRecordIndex : public IndexWrapper {
 public:
  MaskedRecordIndex(std::unique_ptr<Index> inner, const crypto::StoreCrypto* crypto)
      : IndexWrapper(std::move(inner)), crypto_(crypto) {}

  Result<std::optional<std::string>> Get(std::string_view key) override {
    CAIRN_ASSIGN_OR_RETURN(auto v, inner().Get(key));
    if (v && IsChunkRow(key)) UnmaskChunkRecord(key, *v, *crypto_);
    return v;
  }

  Result<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) override {
    CAIRN_ASSIGN_OR_RETURN(auto values, inner().MultiGet(keys));
    for (size_t i = 0; i < keys.size(); i++)
      if (values[i] && IsChunkRow(keys[i])) UnmaskChunkRecord(keys[i], *values[i], *crypto_);
    return values;
  }

  Status Write(WriteBatch batch, bool sync) override {
    for (auto& op : batch.mutable_ops())
      if (!op.is_delete && IsChunkRow(op.key)) MaskChunkRecord(op.key, op.value, *crypto_);
    return inner().Write(std::move(batch), sync);
  }

  Status ScanFrom(std::string_view prefix, std::string_view start, const ScanFn& fn) override {
    return inner().ScanFrom(prefix, start, Unmasking(fn));
  }
  Status ScanHistory(std::string_view prefix, const ScanFn& fn) override {
    return inner().ScanHistory(prefix, Unmasking(fn));
  }

 private:
  ScanFn Unmasking(const ScanFn& fn) const {
    return [this, &fn, v = std::string()](std::string_view k, std::string_view value) mutable {
      if (!IsChunkRow(k)) return fn(k, value);
      v.assign(value);
      UnmaskChunkRecord(k, v, *crypto_);
      return fn(k, v);
    };
  }

  const crypto::StoreCrypto* crypto_;
};

}  // namespace

std::unique_ptr<Index> MakeMaskedRecordIndex(std::unique_ptr<Index> inner,
                                             const crypto::StoreCrypto* crypto) {
  return std::make_unique<MaskedRecordIndex>(std::move(inner), crypto);
}

}  // namespace cairn
