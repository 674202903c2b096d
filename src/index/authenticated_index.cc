// Index values with a MAC appended: value || tag(key, value).
#include "index/authenticated_index.h"

#include <openssl/crypto.h>

namespace cairn {
namespace {

class AuthenticatedIndex : public Index {
 public:
  AuthenticatedIndex(std::unique_ptr<Index> inner, IndexTagFn tag, RowNamer namer)
      : inner_(std::move(inner)), tag_(std::move(tag)), namer_(std::move(namer)) {}

  Result<std::optional<std::string>> Get(std::string_view key) override {
    CAIRN_ASSIGN_OR_RETURN(auto v, inner_->Get(key));
    if (!v) return v;
    CAIRN_RETURN_IF_ERROR(Strip(key, *v));
    return v;
  }

  Status Write(WriteBatch batch, bool sync) override {
    for (auto& op : batch.mutable_ops()) {
      if (op.is_delete) continue;
      auto t = tag_(op.key, op.value);
      op.value.append(reinterpret_cast<const char*>(t.data()), t.size());
    }
    return inner_->Write(std::move(batch), sync);
  }

  Result<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) override {
    CAIRN_ASSIGN_OR_RETURN(auto values, inner_->MultiGet(keys));
    for (size_t i = 0; i < keys.size(); i++)
      if (values[i]) CAIRN_RETURN_IF_ERROR(Strip(keys[i], *values[i]));
    return values;
  }

  Status ScanFrom(std::string_view prefix, std::string_view start, const ScanFn& fn) override {
    Status bad;
    CAIRN_RETURN_IF_ERROR(
        inner_->ScanFrom(prefix, start, [&](std::string_view k, std::string_view v) {
          if (!TagMatches(k, v)) {
            bad = Failure(k);
            return false;
          }
          return fn(k, v.substr(0, v.size() - kIndexTagSize));
        }));
    return bad;
  }

  std::string Describe() const override { return inner_->Describe(); }
  Status Refresh() override { return inner_->Refresh(); }
  Status CatchUp() override { return inner_->CatchUp(); }
  Status Compact() override { return inner_->Compact(); }
  // Old versions carry the MAC of their own time; it is stripped, not checked (a history scan
  // looks for what the files still hold, damaged or not).
  Status ScanHistory(std::string_view prefix, const ScanFn& fn) override {
    return inner_->ScanHistory(prefix, [&](std::string_view k, std::string_view v) {
      return fn(k, v.size() >= kIndexTagSize ? v.substr(0, v.size() - kIndexTagSize) : v);
    });
  }

  Status Verify(const std::function<void(std::string)>& problem) override {
    return inner_->Scan("", [&](std::string_view k, std::string_view v) {
      if (!TagMatches(k, v)) problem(Failure(k).message());
      return true;
    });
  }

 private:
  bool TagMatches(std::string_view k, std::string_view v) const {
    if (v.size() < kIndexTagSize) return false;
    auto t = tag_(k, v.substr(0, v.size() - kIndexTagSize));
    return CRYPTO_memcmp(t.data(), v.data() + v.size() - kIndexTagSize, kIndexTagSize) == 0;
  }
  Status Failure(std::string_view k) const {
    return Status::Corruption(namer_(k) +
                              ": index value fails authentication (tampered or damaged)");
  }
  Status Strip(std::string_view k, std::string& v) const {
    if (!TagMatches(k, v)) return Failure(k);
    v.resize(v.size() - kIndexTagSize);
    return Status::Ok();
  }

  std::unique_ptr<Index> inner_;
  IndexTagFn tag_;
  RowNamer namer_;
};

}  // namespace

std::unique_ptr<Index> MakeAuthenticatedIndex(std::unique_ptr<Index> inner, IndexTagFn tag,
                                              RowNamer namer) {
  return std::make_unique<AuthenticatedIndex>(std::move(inner), std::move(tag), std::move(namer));
}

}  // namespace cairn
