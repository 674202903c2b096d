// Key files and the sealed key ring: Argon2id (libsodium) wraps a KEK, AES-256-GCM seals all.
#include "crypto/keyfile.h"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>

#include "cairn/secure.h"
#include "crypto/aead.h"

namespace cairn::crypto {
namespace {

using nlohmann::json;

constexpr std::string_view kKeyringName = "keyring.sealed";
// A second copy of the key ring, written after it: `cairn repair` puts it back when
// keyring.sealed is damaged or truncated (ADR 0017).
constexpr std::string_view kKeyringCopyName = "keyring.copy.sealed";
constexpr std::string_view kKeyfileFormat = "cairn-keyfile";
constexpr std::string_view kKeyringFormat = "cairn-keyring";
constexpr std::string_view kKdfName = "argon2id13";
constexpr size_t kMaxFileSize = 16 << 20;
// The test-only KDF cost: off unless a test program called EnableTestKdf.
std::atomic<bool> g_test_kdf{false};

std::string ToHex(std::span<const uint8_t> b) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(b.size() * 2);
  for (uint8_t c : b) {
    s.push_back(kHex[c >> 4]);
    s.push_back(kHex[c & 15]);
  }
  return s;
}

bool FromHex(std::string_view h, std::vector<uint8_t>& out) {
  if (h.size() % 2 != 0) return false;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  out.resize(h.size() / 2);
  for (size_t i = 0; i < out.size(); i++) {
    int hi = nib(h[2 * i]), lo = nib(h[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

bool ValidId(std::string_view id) {
  std::vector<uint8_t> tmp;
  return id.size() == 8 && FromHex(id, tmp);
}

// ---- files

std::string KeyPath(std::string_view dir, std::string_view file) {
  return JoinStorageName(dir, file);
}

// Key file ids (<id>.json), sorted. A missing directory has none.
Result<std::vector<std::string>> KeyFileIds(Storage& storage, std::string_view dir) {
  std::vector<std::string> ids;

  auto names = storage.List(dir);
  if (!names.ok()) {
    if (names.status().code() == Code::kNotFound) return ids;
    return names.status();
  }
  for (std::string_view n : *names) {
    if (n.size() > 5 && n.front() != '.' && n.ends_with(".json")) {
      ids.emplace_back(n.substr(0, n.size() - 5));
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

// ---- Argon2id

Status SodiumInit() {
  static int rc = sodium_init();  // thread-safe; 1 = already initialized
  if (rc < 0) return Status::IOError("libsodium failed to initialize");
  return Status::Ok();
}

// The cost a key file may ask for when it is opened (kMinKdf*..kMaxKdf*).
Status CheckParams(const KdfParams& p) {
  if (p.opslimit < kMinKdfOpslimit || p.opslimit > kMaxKdfOpslimit ||
      p.memlimit < kMinKdfMemlimit || p.memlimit > kMaxKdfMemlimit) {
    return Status::Invalid("argon2id parameters out of range (opslimit " +
                           std::to_string(p.opslimit) + ", memlimit " + std::to_string(p.memlimit) +
                           "; a key file may ask for opslimit " + std::to_string(kMinKdfOpslimit) +
                           ".." + std::to_string(kMaxKdfOpslimit) + " and memlimit " +
                           std::to_string(kMinKdfMemlimit) + ".." +
                           std::to_string(kMaxKdfMemlimit) + " bytes)");
  }
  return Status::Ok();
}

// The cost a new key file must have: at least libsodium's interactive level (above OWASP's
// minimum), unless the test-only KDF was enabled.
Status CheckNewParams(const KdfParams& p) {
  CAIRN_RETURN_IF_ERROR(CheckParams(p));
  const KdfParams min = InteractiveKdfParams();
  if (!g_test_kdf.load() && (p.opslimit < min.opslimit || p.memlimit < min.memlimit))
    return Status::Invalid("refusing to create a key file with a weak argon2id cost (opslimit " +
                           std::to_string(p.opslimit) + ", memlimit " + std::to_string(p.memlimit) +
                           "): the minimum is opslimit " + std::to_string(min.opslimit) +
                           ", memlimit " + std::to_string(min.memlimit));
  return Status::Ok();
}

Status CheckPassphrase(std::string_view pass) {
  if (pass.empty()) return Status::Invalid("empty password");
  if (pass.size() > kMaxPasswordBytes)
    return Status::Invalid("the password is longer than " + std::to_string(kMaxPasswordBytes) +
                           " bytes");
  return Status::Ok();
}

Result<Key32> PassphraseKey(std::string_view pass, std::span<const uint8_t> salt,
                            const KdfParams& p) {
  CAIRN_RETURN_IF_ERROR(SodiumInit());
  CAIRN_RETURN_IF_ERROR(CheckParams(p));
  if (salt.size() != crypto_pwhash_SALTBYTES) return Status::Invalid("argon2id: bad salt size");
  Key32 k;
  if (crypto_pwhash(k.b.data(), k.b.size(), pass.data(), pass.size(), salt.data(), p.opslimit,
                    static_cast<size_t>(p.memlimit), crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Status::IOError("argon2id failed (out of memory? memlimit " +
                           std::to_string(p.memlimit) + " bytes)");
  }
  return k;
}

// ---- sealed JSON documents: aad = label 0x00 canonical dump of the header (all but "data").

std::vector<uint8_t> HeaderAad(std::string_view label, const json& header) {
  std::string text = header.dump();
  std::vector<uint8_t> aad(label.begin(), label.end());
  aad.push_back(0);
  aad.insert(aad.end(), text.begin(), text.end());
  return aad;
}

struct ParsedKeyFile {
  json header;  // every field but "data"
  KeyFileInfo info;
  std::vector<uint8_t> salt;
  std::vector<uint8_t> data;
};

// Parses and validates the text of key file `id`; errors name the file (`path`) only.
Result<ParsedKeyFile> ParseKeyFileText(std::string_view text, std::string_view id,
                                       const std::string& path) {
  auto bad = [&](const std::string& why) { return Status::Corruption(path + ": " + why); };
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  auto str = [&](const char* k) -> const std::string* {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
  };
  auto uint = [&](const char* k, uint64_t& v) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_number_unsigned()) return false;
    v = it->get<uint64_t>();
    return true;
  };
  const std::string* format = str("format");
  if (format == nullptr || *format != kKeyfileFormat) return bad("not a cairn key file");
  uint64_t version = 0;
  if (!uint("version", version)) return bad("missing version");
  if (version != 1) {
    return Status::Unsupported(path + ": key file version " + std::to_string(version) +
                               " is not supported");
  }
  ParsedKeyFile p;
  const std::string* fid = str("id");
  const std::string* kdf = str("kdf");
  const std::string* salt = str("salt");
  const std::string* data = str("data");
  uint64_t created = 0;
  if (fid == nullptr || kdf == nullptr || salt == nullptr || data == nullptr ||
      !uint("created", created) || !uint("opslimit", p.info.opslimit) ||
      !uint("memlimit", p.info.memlimit)) {
    return bad("missing or mistyped field");
  }
  if (*fid != id) return bad("id field does not match the file name");
  if (*kdf != kKdfName) return Status::Unsupported(path + ": unknown kdf " + *kdf);
  if (!FromHex(*salt, p.salt) || p.salt.size() != crypto_pwhash_SALTBYTES) return bad("bad salt");
  if (!FromHex(*data, p.data) || p.data.size() != Key32::kSize + kSealOverhead) {
    return bad("bad data");
  }
  CAIRN_RETURN_IF_ERROR(CheckParams({p.info.opslimit, p.info.memlimit}).WithContext(path));
  p.info.id = std::string(id);
  p.info.created = static_cast<int64_t>(created);
  p.info.kdf = *kdf;
  p.header = std::move(j);
  p.header.erase("data");
  return p;
}

// Reads and parses key file `id` of `dir`.
Result<ParsedKeyFile> ReadKeyFile(Storage& storage, std::string_view dir, const std::string& id) {
  const std::string name = KeyPath(dir, id + ".json");
  CAIRN_ASSIGN_OR_RETURN(std::string text, storage.ReadFile(name, kMaxFileSize));
  return ParseKeyFileText(text, id, storage.Describe(name));
}

Status WriteKeyFile(Storage& storage, std::string_view dir, const Key32& kek,
                    std::string_view passphrase, const KdfParams& params, std::string* id_out) {
  CAIRN_RETURN_IF_ERROR(CheckPassphrase(passphrase));
  CAIRN_RETURN_IF_ERROR(CheckNewParams(params));
  CAIRN_ASSIGN_OR_RETURN(auto existing, KeyFileIds(storage, dir));
  std::string id;
  for (int tries = 0; id.empty(); tries++) {
    uint8_t r[4];
    CAIRN_RETURN_IF_ERROR(RandomBytes(r));
    id = ToHex(r);
    if (std::binary_search(existing.begin(), existing.end(), id)) id.clear();
    if (tries > 100)
      return Status::IOError(storage.Describe(dir) + ": cannot pick a free key file id");
  }
  std::vector<uint8_t> salt(crypto_pwhash_SALTBYTES);
  CAIRN_RETURN_IF_ERROR(RandomBytes(salt));
  json h = json::object();
  h["format"] = kKeyfileFormat;
  h["version"] = 1u;
  h["id"] = id;
  h["created"] = static_cast<uint64_t>(std::time(nullptr));
  h["kdf"] = kKdfName;
  h["opslimit"] = params.opslimit;
  h["memlimit"] = params.memlimit;
  h["salt"] = ToHex(salt);
  CAIRN_ASSIGN_OR_RETURN(Key32 pk, PassphraseKey(passphrase, salt, params));
  std::vector<uint8_t> sealed;
  CAIRN_RETURN_IF_ERROR(Seal(pk, HeaderAad("cairn/v1/keyfile", h), kek.b, sealed));
  h["data"] = ToHex(sealed);
  // Exclusive: a new key file never replaces one (a racing writer's, or a stale one).
  CAIRN_RETURN_IF_ERROR(
      storage.WriteFile(KeyPath(dir, id + ".json"), h.dump(2) + "\n", /*exclusive=*/true));
  if (id_out != nullptr) *id_out = id;
  return Status::Ok();
}

// Invalid unless `ring` survives Serialize + Parse (what Unlock will do with it).
Status CheckKeyRing(const KeyRing& ring) {
  std::vector<uint8_t> check = ring.Serialize();
  auto parsed = KeyRing::Parse(check);
  Cleanse(check.data(), check.size());
  if (!parsed.ok()) return Status::Invalid("invalid key ring: " + parsed.status().message());
  return Status::Ok();
}

// `keyfiles`: the ids of the key files allowed to open the ring (nullopt: any, as in key rings
// written before format 3); kept in the header, so it is covered by the AAD.
Status WriteKeyRing(Storage& storage, std::string_view dir, const Key32& kek, const KeyRing& ring,
                    const std::optional<std::vector<std::string>>& keyfiles) {
  json h = json::object();
  h["format"] = kKeyringFormat;
  h["version"] = 1u;
  h["updated"] = static_cast<uint64_t>(std::time(nullptr));
  if (keyfiles) {
    std::vector<std::string> sorted = *keyfiles;
    std::sort(sorted.begin(), sorted.end());
    h["keyfiles"] = sorted;
  }
  std::vector<uint8_t> plain = ring.Serialize();
  std::vector<uint8_t> sealed;
  Status s = Seal(kek, HeaderAad("cairn/v1/keyring", h), plain, sealed);
  Cleanse(plain.data(), plain.size());
  CAIRN_RETURN_IF_ERROR(s);
  h["data"] = ToHex(sealed);
  CAIRN_RETURN_IF_ERROR(storage.WriteFile(KeyPath(dir, kKeyringName), h.dump(2) + "\n"));
  // Best effort: the ring is in place; a missing or older copy is refreshed by `cairn repair`.
  (void)storage.WriteFile(KeyPath(dir, kKeyringCopyName), h.dump(2) + "\n");
  return Status::Ok();
}

// The "keyfiles" list of a key ring header (nullopt when absent); Corruption when malformed.
Result<std::optional<std::vector<std::string>>> HeaderKeyFiles(const json& j,
                                                               const std::string& path) {
  auto it = j.find("keyfiles");
  if (it == j.end()) return std::optional<std::vector<std::string>>();
  if (!it->is_array() || it->size() > 4096) return Status::Corruption(path + ": bad keyfiles list");
  std::vector<std::string> ids;
  for (const auto& e : *it) {
    if (!e.is_string() || !ValidId(e.get_ref<const std::string&>()))
      return Status::Corruption(path + ": bad keyfiles list");
    ids.push_back(e.get<std::string>());
  }
  return std::optional<std::vector<std::string>>(std::move(ids));
}

struct OpenedRing {
  KeyRing ring;
  std::optional<std::vector<std::string>> keyfiles;
};

Result<OpenedRing> OpenKeyRingText(std::string_view text, const Key32& kek,
                                   const std::string& path) {
  auto bad = [&](const std::string& why) { return Status::Corruption(path + ": " + why); };
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  auto f = j.find("format");
  if (f == j.end() || !f->is_string() || f->get<std::string>() != kKeyringFormat) {
    return bad("not a cairn key ring");
  }
  auto v = j.find("version");
  if (v == j.end() || !v->is_number_unsigned()) return bad("missing version");
  if (v->get<uint64_t>() != 1)
    return Status::Unsupported(path + ": key ring version not supported");
  auto d = j.find("data");
  std::vector<uint8_t> sealed;
  if (d == j.end() || !d->is_string() ||
      d->get_ref<const std::string&>().size() > 2 * kMaxFileSize ||
      !FromHex(d->get<std::string>(), sealed)) {
    return bad("bad data");
  }
  OpenedRing out;
  CAIRN_ASSIGN_OR_RETURN(out.keyfiles, HeaderKeyFiles(j, path));
  j.erase("data");
  std::vector<uint8_t> plain;
  if (!Open(kek, HeaderAad("cairn/v1/keyring", j), sealed, plain).ok()) {
    return bad("authentication failed (damaged, or not sealed by this repository's key files)");
  }
  auto ring = KeyRing::Parse(plain);
  Cleanse(plain.data(), plain.size());
  if (!ring.ok()) return ring.status().WithContext(path);
  out.ring = std::move(*ring);
  return out;
}

// The text of key ring file `leaf` and the ring it opens to.
Result<std::pair<std::string, OpenedRing>> ReadRingFile(Storage& storage, std::string_view dir,
                                                        std::string_view leaf, const Key32& kek) {
  const std::string name = KeyPath(dir, leaf);
  auto text = storage.ReadFile(name, kMaxFileSize);
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound)
      return Status::Corruption(storage.Describe(name) + " is missing");
    return text.status();
  }
  CAIRN_ASSIGN_OR_RETURN(OpenedRing ring, OpenKeyRingText(*text, kek, storage.Describe(name)));
  return std::make_pair(std::move(*text), std::move(ring));
}

Result<OpenedRing> ReadKeyRing(Storage& storage, std::string_view dir, const Key32& kek) {
  // Only keyring.sealed: a damaged one is an error naming it (it may have been tampered with);
  // `cairn repair` puts its copy back.
  CAIRN_ASSIGN_OR_RETURN(auto text_ring, ReadRingFile(storage, dir, kKeyringName, kek));
  return std::move(text_ring.second);
}

// Checks that `ring` is well formed, writes it as keyring.sealed under the unlocked KEK
// (atomically) and makes it unlocked.ring. Callers decide which changes are allowed.
Status ReplaceKeyRing(Storage& storage, std::string_view dir, UnlockedKeys& unlocked,
                      const KeyRing& ring) {
  CAIRN_RETURN_IF_ERROR(CheckKeyRing(ring));
  CAIRN_RETURN_IF_ERROR(WriteKeyRing(storage, dir, unlocked.kek, ring, unlocked.keyfiles));
  unlocked.ring = ring;
  return Status::Ok();
}

}  // namespace

KdfParams InteractiveKdfParams() {
  return {crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE};
}
// 64 KiB: each unlock costs about 0.1 ms instead of 9 ms at 8 MiB; the crash and kill -9 tests
// unlock key files several times per cut.
KdfParams FastKdfParams() { return {crypto_pwhash_OPSLIMIT_MIN, uint64_t{64} << 10}; }
KdfParams DefaultKdfParams() {
  return g_test_kdf.load() ? FastKdfParams() : InteractiveKdfParams();
}
void EnableTestKdf() { g_test_kdf.store(true); }

Result<KeyFileInfo> ParseKeyFile(std::string_view text, std::string_view id,
                                 const std::string& where) {
  CAIRN_ASSIGN_OR_RETURN(ParsedKeyFile p, ParseKeyFileText(text, id, where));
  return std::move(p.info);
}

Result<KeyRing> OpenKeyRingFile(std::string_view text, const Key32& kek, const std::string& where) {
  CAIRN_ASSIGN_OR_RETURN(OpenedRing r, OpenKeyRingText(text, kek, where));
  return std::move(r.ring);
}

Status CreateKeyFile(Storage& storage, std::string_view dir, const KeyRing& ring,
                     std::string_view passphrase, const KdfParams& params, std::string* id_out) {
  CAIRN_RETURN_IF_ERROR(CheckPassphrase(passphrase));
  CAIRN_RETURN_IF_ERROR(CheckNewParams(params));
  CAIRN_RETURN_IF_ERROR(CheckKeyRing(ring));
  CAIRN_RETURN_IF_ERROR(storage.CreateDir(dir, /*exist_ok=*/true));
  CAIRN_ASSIGN_OR_RETURN(auto ids, KeyFileIds(storage, dir));
  if (!ids.empty()) {
    return Status::Invalid(storage.Describe(dir) +
                           " already has key files; add one with the existing password");
  }
  // The key ring first: until a key file exists, a stale keyring.sealed is unreachable and
  // gets replaced by the next CreateKeyFile.
  CAIRN_ASSIGN_OR_RETURN(Key32 kek, RandomKey());
  CAIRN_RETURN_IF_ERROR(WriteKeyRing(storage, dir, kek, ring, std::nullopt));
  std::string id;
  CAIRN_RETURN_IF_ERROR(WriteKeyFile(storage, dir, kek, passphrase, params, &id));
  // Then the ring again, listing the one key file allowed to open it.
  CAIRN_RETURN_IF_ERROR(WriteKeyRing(storage, dir, kek, ring, std::vector<std::string>{id}));
  if (id_out != nullptr) *id_out = id;
  return Status::Ok();
}

// The KEK from the first key file that opens with `passphrase`, with that file's id; with
// `with_ring`, also the key ring, and only from a key file the ring lists.
static Result<UnlockedKeys> OpenKek(Storage& storage, std::string_view dir,
                                    std::string_view passphrase, bool with_ring) {
  CAIRN_RETURN_IF_ERROR(CheckPassphrase(passphrase));
  const std::string where = storage.Describe(dir);
  CAIRN_ASSIGN_OR_RETURN(auto ids, KeyFileIds(storage, dir));
  if (ids.empty()) return Status::NotFound(where + " has no key files");
  Status first_error, unlisted;
  bool any_wellformed = false;
  for (const std::string& id : ids) {
    auto p = ReadKeyFile(storage, dir, id);
    if (!p.ok()) {
      if (first_error.ok()) first_error = p.status();
      continue;
    }
    any_wellformed = true;
    KdfParams params{p->info.opslimit, p->info.memlimit};
    CAIRN_ASSIGN_OR_RETURN(Key32 pk, PassphraseKey(passphrase, p->salt, params));
    UnlockedKeys u;
    if (!OpenInto(pk, HeaderAad("cairn/v1/keyfile", p->header), p->data, u.kek.b).ok()) continue;
    u.keyfile_id = id;
    if (!with_ring) return u;
    CAIRN_ASSIGN_OR_RETURN(OpenedRing r, ReadKeyRing(storage, dir, u.kek));
    if (r.keyfiles && !std::binary_search(r.keyfiles->begin(), r.keyfiles->end(), id)) {
      // Opens, but the ring does not list it: planted, or put back after `key rm`.
      unlisted = Status::FromErrno(
          EACCES, storage.Describe(KeyPath(dir, id + ".json")) +
                      " opens with this password but the key ring does not list it (restored "
                      "after `cairn key rm`, or planted): refusing it");
      continue;
    }
    u.ring = std::move(r.ring);
    u.keyfiles = std::move(r.keyfiles);
    return u;
  }
  if (!unlisted.ok()) return unlisted;
  if (!any_wellformed) return first_error.WithContext("no usable key file in " + where);
  return Status::FromErrno(EACCES, "wrong password: no key file in " + where + " opens with it");
}

Result<UnlockedKeys> Unlock(Storage& storage, std::string_view dir, std::string_view passphrase) {
  return OpenKek(storage, dir, passphrase, /*with_ring=*/true);
}

Result<std::string> RepairKeyRing(Storage& storage, std::string_view dir,
                                  std::string_view passphrase) {
  CAIRN_ASSIGN_OR_RETURN(UnlockedKeys u, OpenKek(storage, dir, passphrase, /*with_ring=*/false));
  const Key32& kek = u.kek;
  auto main = ReadRingFile(storage, dir, kKeyringName, kek);
  auto copy = ReadRingFile(storage, dir, kKeyringCopyName, kek);
  if (main.ok() && copy.ok() && main->first == copy->first) return std::string();
  if (main.ok()) {
    CAIRN_RETURN_IF_ERROR(storage.WriteFile(KeyPath(dir, kKeyringCopyName), main->first));
    return storage.Describe(KeyPath(dir, kKeyringCopyName)) + " written from " +
           storage.Describe(KeyPath(dir, kKeyringName)) +
           (copy.ok() ? " (it was older)" : " (" + copy.status().message() + ")");
  }
  if (!copy.ok())
    return Status::Corruption("the key ring is lost: " + main.status().message() + "; " +
                              copy.status().message());
  CAIRN_RETURN_IF_ERROR(storage.WriteFile(KeyPath(dir, kKeyringName), copy->first));
  return storage.Describe(KeyPath(dir, kKeyringName)) + " restored from its copy (" +
         main.status().message() + ")";
}

Result<KeyRing> UnlockKeyRing(Storage& storage, std::string_view dir, std::string_view passphrase) {
  CAIRN_ASSIGN_OR_RETURN(UnlockedKeys u, Unlock(storage, dir, passphrase));
  return std::move(u.ring);
}

Status AddKeyFile(Storage& storage, std::string_view dir, UnlockedKeys& unlocked,
                  std::string_view new_passphrase, const KdfParams& params, std::string* id_out) {
  std::string id;
  CAIRN_RETURN_IF_ERROR(WriteKeyFile(storage, dir, unlocked.kek, new_passphrase, params, &id));
  if (unlocked.keyfiles) {
    // Listed in the ring only now: a crash in between leaves a key file that opens nothing.
    auto listed = unlocked.keyfiles;
    listed->push_back(id);
    Status s = WriteKeyRing(storage, dir, unlocked.kek, unlocked.ring, listed);
    if (!s.ok()) {
      (void)storage.RemoveFile(KeyPath(dir, id + ".json"));
      return s;
    }
    std::sort(listed->begin(), listed->end());
    unlocked.keyfiles = std::move(listed);
  }
  if (id_out != nullptr) *id_out = id;
  return Status::Ok();
}

Status RecordKeyFiles(Storage& storage, std::string_view dir, UnlockedKeys& unlocked) {
  if (unlocked.keyfiles) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(auto files, ListKeyFiles(storage, dir));
  std::vector<std::string> ids;
  for (const auto& f : files)
    if (f.error.empty()) ids.push_back(f.id);
  CAIRN_RETURN_IF_ERROR(WriteKeyRing(storage, dir, unlocked.kek, unlocked.ring, ids));
  unlocked.keyfiles = std::move(ids);
  return Status::Ok();
}

Result<std::vector<KeyFileInfo>> ListKeyFiles(Storage& storage, std::string_view dir) {
  CAIRN_ASSIGN_OR_RETURN(auto ids, KeyFileIds(storage, dir));
  std::vector<KeyFileInfo> out;
  for (const std::string& id : ids) {
    auto p = ReadKeyFile(storage, dir, id);
    if (p.ok()) {
      out.push_back(p->info);
    } else {
      KeyFileInfo bad;
      bad.id = id;
      bad.error = p.status().message();
      out.push_back(std::move(bad));
    }
  }
  return out;
}

Status RemoveKeyFile(Storage& storage, std::string_view dir, std::string_view id,
                     UnlockedKeys* unlocked) {
  if (!ValidId(id)) return Status::Invalid("bad key file id '" + std::string(id) + "'");
  const std::string where = storage.Describe(dir);
  CAIRN_ASSIGN_OR_RETURN(auto ids, KeyFileIds(storage, dir));
  if (!std::binary_search(ids.begin(), ids.end(), std::string(id))) {
    return Status::NotFound("no key file " + std::string(id) + " in " + where);
  }
  size_t others = 0;
  for (const std::string& other : ids) {
    if (other != id && ReadKeyFile(storage, dir, other).ok()) others++;
  }
  if (others == 0) {
    return Status::Invalid("refusing to remove key file " + std::string(id) +
                           ": it is the last usable key file in " + where);
  }
  CAIRN_RETURN_IF_ERROR(storage.RemoveFile(KeyPath(dir, std::string(id) + ".json")));
  if (unlocked != nullptr && unlocked->keyfiles) {
    // Then unlisted. Should this fail, the ring lists a file that no longer exists: harmless
    // (only a holder of the KEK can make a file the ring would accept).
    std::vector<std::string> kept;
    for (const auto& k : *unlocked->keyfiles)
      if (k != id) kept.push_back(k);
    CAIRN_RETURN_IF_ERROR(WriteKeyRing(storage, dir, unlocked->kek, unlocked->ring, kept));
    unlocked->keyfiles = std::move(kept);
  }
  return Status::Ok();
}

Status RewriteKeyRing(Storage& storage, std::string_view dir, UnlockedKeys& unlocked,
                      const KeyRing& ring) {
  if (!(ring.root == unlocked.ring.root)) {
    return Status::Invalid("refusing to rewrite the key ring: the root key would change");
  }
  for (const auto& [ver, key] : unlocked.ring.master_by_version) {
    auto it = ring.master_by_version.find(ver);
    if (it == ring.master_by_version.end() || !(it->second == key)) {
      return Status::Invalid("refusing to rewrite the key ring: master key version " +
                             std::to_string(ver) + " would be dropped or changed");
    }
  }
  return ReplaceKeyRing(storage, dir, unlocked, ring);
}

Status RotateMasterKey(Storage& storage, std::string_view dir, UnlockedKeys& unlocked) {
  KeyRing next = unlocked.ring;
  CAIRN_RETURN_IF_ERROR(next.Rotate());
  return RewriteKeyRing(storage, dir, unlocked, next);
}

Status RetireKeyVersion(Storage& storage, std::string_view dir, UnlockedKeys& unlocked,
                        uint32_t version) {
  KeyRing next = unlocked.ring;
  CAIRN_RETURN_IF_ERROR(next.Retire(version));
  return ReplaceKeyRing(storage, dir, unlocked, next);
}

}  // namespace cairn::crypto
