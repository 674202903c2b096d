// Writer leases of a shared-writers store (writer_lease.h).
#include "repo/writer_lease.h"

#include <array>
#include <nlohmann/json.hpp>
#include <thread>

#include "crypto/secret.h"
#include "util/clock.h"

namespace cairn {
namespace {

constexpr size_t kMaxLeaseBytes = 4096;

uint64_t Ns(std::chrono::nanoseconds d) { return static_cast<uint64_t>(d.count()); }

}  // namespace

std::string RandomClientId() {
  std::array<uint8_t, 8> b{};
  if (!crypto::RandomBytes(b).ok()) {
    // Without the CSPRNG the time and the thread make a name unique enough for a lease.
    uint64_t t = UnixNanos() ^ std::hash<std::thread::id>()(std::this_thread::get_id());
    for (auto& x : b) x = static_cast<uint8_t>(t), t >>= 8;
  }
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (uint8_t x : b) s += {kHex[x >> 4], kHex[x & 15]};
  return s;
}

namespace {

struct Lease {
  uint64_t oldest_open_ns = 0, renewed_ns = 0;
};

std::optional<Lease> DecodeLease(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || j.value("version", 0) != 1) return std::nullopt;
  for (const char* k : {"oldest_open_ns", "renewed_ns"})
    if (!j.contains(k) || !j[k].is_number_unsigned()) return std::nullopt;
  return Lease{j["oldest_open_ns"].get<uint64_t>(), j["renewed_ns"].get<uint64_t>()};
}

}  // namespace

std::string LeaseDir(const std::string& store_dir) { return JoinStorageName(store_dir, "leases"); }

WriterLease::WriterLease(Storage* storage, std::string store_dir,
                         std::function<std::optional<uint64_t>()> oldest_open, LeaseTiming timing)
    : storage_(storage),
      dir_(LeaseDir(store_dir)),
      name_(JoinStorageName(dir_, RandomClientId())),
      oldest_open_(std::move(oldest_open)),
      timing_(timing) {
  renewal_.emplace(timing_.renew_every, [this] {
    (void)RenewNow();
    return true;
  });
}

WriterLease::~WriterLease() {
  renewal_.reset();
  std::lock_guard rl(renew_mu_);
  if (written_) (void)storage_->RemoveFile(name_);
}

Status WriterLease::RenewNow() {
  std::lock_guard rl(renew_mu_);
  const uint64_t now = UnixNanos();
  std::optional<uint64_t> oldest = oldest_open_();
  Status s;
  if (oldest && now >= *oldest + Ns(timing_.publish_after)) {
    nlohmann::ordered_json j;
    j["version"] = 1;
    j["oldest_open_ns"] = *oldest;
    j["renewed_ns"] = now;
    if (!written_) s = storage_->CreateDir(dir_, true);
    if (s.ok()) s = storage_->WriteFile(name_, j.dump() + "\n");
    if (s.ok()) written_ = true;
    // The transaction may have ended while the lease was written: then it goes now rather than
    // at the next renewal.
    if (s.ok() && !oldest_open_()) {
      s = storage_->RemoveFile(name_);
      if (s.ok()) written_ = false;
    }
  } else if (written_) {
    s = storage_->RemoveFile(name_);
    if (s.ok() || s.code() == Code::kNotFound) written_ = false, s = Status::Ok();
  }
  std::lock_guard lk(mu_);
  last_ = s.ok() ? s : s.WithContext("writer lease " + storage_->Describe(name_));
  return last_;
}

Status WriterLease::LastError() const {
  std::lock_guard lk(mu_);
  return last_;
}

Result<std::optional<uint64_t>> KeepZeroAfter(Storage& storage, const std::string& store_dir,
                                              uint64_t now_ns, const LeaseTiming& timing) {
  const std::string dir = LeaseDir(store_dir);
  auto names = storage.List(dir);
  if (!names.ok() && names.status().code() == Code::kNotFound) return std::optional<uint64_t>();
  CAIRN_RETURN_IF_ERROR(names.status());
  std::optional<uint64_t> keep;
  for (const auto& n : *names) {
    const std::string name = JoinStorageName(dir, n);
    auto text = storage.ReadFile(name, kMaxLeaseBytes);
    if (!text.ok() && text.status().code() == Code::kNotFound) continue;  // removed meanwhile
    CAIRN_RETURN_IF_ERROR(text.status());
    auto lease = DecodeLease(*text);
    if (!lease)
      return Status::Corruption(storage.Describe(name) +
                                " does not decode: it is a writer lease, which guards the chunks "
                                "another client's open transaction uses; remove it once that "
                                "client has stopped");
    if (lease->renewed_ns + Ns(timing.expire_after) < now_ns) {
      (void)storage.RemoveFile(name);  // its client died or stalled
      continue;
    }
    const uint64_t skew = Ns(timing.clock_skew);
    const uint64_t from = lease->oldest_open_ns > skew ? lease->oldest_open_ns - skew : 0;
    keep = keep ? std::min(*keep, from) : from;
  }
  return keep;
}

}  // namespace cairn
