// Passphrase-protected key files: how a repository's key ring is stored at rest (REPO/keys/).
// Every function takes the repository's Storage and the key directory's name in it ("keys");
// messages name files by Storage::Describe ("REPO/keys/1a2b3c4d.json").
//
// Layout of the key directory:
//   keyring.sealed   the KeyRing (root key, master key versions, current), sealed once with
//                    AES-256-GCM under a random key-wrapping key (KEK)
//   <id>.json        one key file per passphrase: Argon2id(passphrase, salt) seals the KEK
//
// Every key file wraps the same KEK, so each passphrase opens the same ring. Adding, removing
// or re-passphrasing a key file touches only that file; key rotation (a new master version) and
// retirement (dropping an unused one) rewrite only keyring.sealed, so they work without knowing
// the other passphrases.
//
// Key file (JSON): {"format":"cairn-keyfile","version":1,"id":hex8,"created":unix,
//   "kdf":"argon2id13","opslimit":N,"memlimit":N,"salt":hex16bytes,"data":hex}
// data = Seal(Argon2id key, aad = "cairn/v1/keyfile" 0x00 canonical JSON of every other field,
// KEK). keyring.sealed: {"format":"cairn-keyring","version":1,"updated":unix,"data":hex}, data =
// Seal(KEK, aad = "cairn/v1/keyring" 0x00 canonical JSON of the other fields, KeyRing bytes).
// Editing any header field therefore makes the file fail to open. All writes are atomic
// (Storage::WriteFile: temporary file, fsync, rename, directory fsync); files are created mode
// 0600, and a new key file never replaces an existing one (exclusive create).
//
// Not covered: rolling keyring.sealed back to an older copy (it would drop newer master
// versions, whose chunks would then fail to open rather than be misread, and bring back
// retired ones).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/storage.h"
#include "cairn/status.h"
#include "crypto/keys.h"
#include "crypto/secret.h"

namespace cairn::crypto {

// Argon2id cost. Stored in each key file, so a file keeps the cost it was created with.
struct KdfParams {
  uint64_t opslimit;
  uint64_t memlimit;  // bytes
};
// The cost a key file may ask for when it is opened. A key file is input like any other: a
// planted or edited one must not make an unlock take minutes or gigabytes. The caps are
// libsodium's "sensitive" level for memory (crypto_pwhash_MEMLIMIT_SENSITIVE, 1 GiB) and 2.5x
// its opslimit (4), so the slowest unlock stays within about ten seconds on one core; the
// floors are libsodium's minimum (older test repositories used them). Creating a key file needs
// more (CheckNewParams in keyfile.cc): at least the interactive level, which is above OWASP's
// Argon2id minimum (19 MiB, 2 passes; OWASP Password Storage Cheat Sheet).
inline constexpr uint64_t kMinKdfOpslimit = 1;
inline constexpr uint64_t kMaxKdfOpslimit = 10;
inline constexpr uint64_t kMinKdfMemlimit = 8192;
inline constexpr uint64_t kMaxKdfMemlimit = uint64_t{1} << 30;

// libsodium's interactive level: opslimit 2, 64 MiB.
KdfParams InteractiveKdfParams();
// opslimit 1, 64 KiB: WEAK, for tests only (a passphrase under it is far cheaper to guess).
KdfParams FastKdfParams();
// InteractiveKdfParams(), or FastKdfParams() once EnableTestKdf was called.
KdfParams DefaultKdfParams();
// Test programs only (cairn_tests, and cairn-test, the CLI build the CLI tests run, when its
// environment has CAIRN_KDF_FAST=1): makes DefaultKdfParams return FastKdfParams and allows
// creating key files below the interactive level. The release `cairn` never calls it, and no
// input or environment variable reaches it there.
void EnableTestKdf();

struct KeyFileInfo {
  std::string id;
  int64_t created = 0;
  std::string kdf;
  uint64_t opslimit = 0;
  uint64_t memlimit = 0;
  std::string error;  // non-empty when the file is malformed (it is still listed)
};

// What a passphrase unlocks: the ring, the KEK, and which key file opened.
struct UnlockedKeys {
  KeyRing ring;
  Key32 kek;
  std::string keyfile_id;
  // The key files the ring allows (its "keyfiles" header field, sorted); nullopt for a ring
  // written before format 3, which any key file may open.
  std::optional<std::vector<std::string>> keyfiles;
};

// Every function that takes a passphrase refuses an empty one and one longer than
// kMaxPasswordBytes (cairn/secure.h) with InvalidArgument.

// Parses the text of key file `id` ("<id>.json") without unlocking it; `where` names it in
// messages. Corruption for malformed JSON, fields or hex, or an id field that does not match;
// Unsupported for another version or kdf; InvalidArgument for an Argon2id cost out of bounds.
Result<KeyFileInfo> ParseKeyFile(std::string_view text, std::string_view id,
                                 const std::string& where);
// Parses and opens the text of keyring.sealed with the key-wrapping key `kek`. Corruption when
// it is malformed or fails authentication; Unsupported for another version.
Result<KeyRing> OpenKeyRingFile(std::string_view text, const Key32& kek, const std::string& where);

// Sets up directory `dir` (created if missing) for a new repository: a fresh KEK,
// keyring.sealed holding `ring`, and a first key file for `passphrase`. Refuses a directory
// that already has key files. `id_out` (optional) receives the new key file's id.
Status CreateKeyFile(Storage& storage, std::string_view dir, const KeyRing& ring,
                     std::string_view passphrase, const KdfParams& params, std::string* id_out);

// Tries each key file with `passphrase`, then opens keyring.sealed. A key file the ring does
// not list (when it lists any) is refused: PermissionDenied "... the key ring does not list it".
//   no key files                       -> NotFound "DIR has no key files"
//   no key file opens                  -> PermissionDenied "wrong password: no key file in DIR
//                                         opens with it" (a damaged key file looks the same)
//   a key file opens, keyring does not -> Corruption
Result<UnlockedKeys> Unlock(Storage& storage, std::string_view dir, std::string_view passphrase);
// Unlock(...).ring.
Result<KeyRing> UnlockKeyRing(Storage& storage, std::string_view dir, std::string_view passphrase);

// Repair of the key ring (`cairn repair`): keyring.sealed has a copy, keyring.copy.sealed,
// written after it (best effort) and read only here. Opens the KEK with `passphrase`, then makes
// both files hold the ring that opens (keyring.sealed when both do). Returns what it changed
// ("" when nothing); Corruption when neither opens (the ring is lost); the errors of Unlock for
// the passphrase.
Result<std::string> RepairKeyRing(Storage& storage, std::string_view dir,
                                  std::string_view passphrase);

// Adds a key file for `new_passphrase` wrapping the unlocked KEK, then lists it in the key ring
// (key add; key passwd is AddKeyFile + RemoveKeyFile(unlocked.keyfile_id)).
Status AddKeyFile(Storage& storage, std::string_view dir, UnlockedKeys& unlocked,
                  std::string_view new_passphrase, const KdfParams& params, std::string* id_out);
// Makes the key ring list the well-formed key files present now, when it lists none yet (a
// key ring written before format 3; done by the format-3 upgrade).
Status RecordKeyFiles(Storage& storage, std::string_view dir, UnlockedKeys& unlocked);

// Every key file, sorted by id; malformed ones are listed with `error` set.
Result<std::vector<KeyFileInfo>> ListKeyFiles(Storage& storage, std::string_view dir);

// Deletes key file `id`; refuses when no other well-formed key file would remain. With
// `unlocked` (whose ring lists key files), the ring stops listing it first.
Status RemoveKeyFile(Storage& storage, std::string_view dir, std::string_view id,
                     UnlockedKeys* unlocked = nullptr);

// Rewrites keyring.sealed with `ring` under the unlocked KEK, leaving every key file as is, and
// updates unlocked.ring. Refuses a ring with a different root key, or one that drops or changes
// any master version of unlocked.ring (data sealed under it would become unreadable).
Status RewriteKeyRing(Storage& storage, std::string_view dir, UnlockedKeys& unlocked,
                      const KeyRing& ring);
// Key rotation: adds master version current+1, makes it current, rewrites keyring.sealed.
Status RotateMasterKey(Storage& storage, std::string_view dir, UnlockedKeys& unlocked);
// Key retirement: removes master version `version` (KeyRing::Retire: not the current one),
// rewrites keyring.sealed and updates unlocked.ring. The caller must check first that no chunk
// or metadata row of any store is still sealed under `version`: afterwards it cannot be opened.
Status RetireKeyVersion(Storage& storage, std::string_view dir, UnlockedKeys& unlocked,
                        uint32_t version);

}  // namespace cairn::crypto
