// HKDF-SHA-256 (RFC 5869, over HMAC-SHA-256, RFC 2104, over OpenSSL's SHA-256): derives every
// sub-key in the key hierarchy (keys.h) from a parent key, a salt and a labelled info string.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "cairn/status.h"
#include "crypto/secret.h"

namespace cairn::crypto {

// Plain RFC 5869 HKDF-SHA-256 (extract then expand) into `out` (1..8160 bytes). An empty salt
// means HashLen zero bytes, as in the RFC.
Status HkdfRaw(std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
               std::span<const uint8_t> info, std::span<uint8_t> out);

// A 32-byte key from `ikm`. info = info_label || 0x00 || info_extra; labels are fixed ASCII
// strings ("cairn/v1/...") that never contain NUL, so distinct labels give independent keys.
// Cannot fail (HkdfRaw fails only on a bad output length). About 0.6 us: one per chunk key.
Key32 Hkdf(const Key32& ikm, std::span<const uint8_t> salt, std::string_view info_label,
           std::span<const uint8_t> info_extra = {});

}  // namespace cairn::crypto
