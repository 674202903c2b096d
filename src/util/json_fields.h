// JsonFields: strict, exception-free reading of the fields of one JSON object (config.json,
// users.json, key files). A number is taken only when it is an integer that fits the requested
// range exactly (no truncation: 4294967298 is not a u32 2; 2.0, -1 and "2" are not a u64), a
// string only when it is a string. Every error is a Corruption naming the file and the field,
// never an exception.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "cairn/status.h"

namespace cairn {

class JsonFields {
 public:
  // `obj` must outlive this reader; `where` names the object in messages ("/r/config.json",
  // "/r/users.json: user 3").
  JsonFields(const nlohmann::json& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

  // Whether the object has a field `key` (of any type).
  bool Has(const char* key) const { return obj_.is_object() && obj_.contains(key); }

  // Field `key` as a string: Corruption when it is missing or not a string.
  Status String(const char* key, std::string& out) const {
    const nlohmann::json* v = Find(key);
    if (v == nullptr) return Missing(key);
    if (!v->is_string()) return Bad(key, "is not a string");
    out = v->get_ref<const std::string&>();
    return Status::Ok();
  }

  // Field `key` as an unsigned integer in [lo, hi]: Corruption when it is missing, not a
  // non-negative integer (a float, a negative number, a string), or out of range.
  Status U64(const char* key, uint64_t& out, uint64_t lo = 0,
             uint64_t hi = std::numeric_limits<uint64_t>::max()) const {
    const nlohmann::json* v = Find(key);
    if (v == nullptr) return Missing(key);
    return Number(key, *v, out, lo, hi);
  }
  // The same into a u32 (hi capped at 2^32-1) or an int (capped at INT_MAX).
  Status U32(const char* key, uint32_t& out, uint32_t lo = 0,
             uint32_t hi = std::numeric_limits<uint32_t>::max()) const {
    uint64_t v = 0;
    CAIRN_RETURN_IF_ERROR(U64(key, v, lo, hi));
    out = static_cast<uint32_t>(v);
    return Status::Ok();
  }
  // An optional field: `out` keeps its value when the field is absent.
  Status OptionalU64(const char* key, uint64_t& out, uint64_t lo = 0,
                     uint64_t hi = std::numeric_limits<uint64_t>::max()) const {
    const nlohmann::json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    return Number(key, *v, out, lo, hi);
  }
  // Field `key` as an object (for nested readers): Corruption when missing or not an object.
  Result<const nlohmann::json*> Object(const char* key) const {
    const nlohmann::json* v = Find(key);
    if (v == nullptr) return Missing(key);
    if (!v->is_object()) return Bad(key, "is not an object");
    return v;
  }
  // Field `key` as an array: Corruption when missing or not an array.
  Result<const nlohmann::json*> Array(const char* key) const {
    const nlohmann::json* v = Find(key);
    if (v == nullptr) return Missing(key);
    if (!v->is_array()) return Bad(key, "is not an array");
    return v;
  }

  const std::string& where() const { return where_; }

 private:
  const nlohmann::json* Find(const char* key) const {
    if (!obj_.is_object()) return nullptr;
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  Status Number(const char* key, const nlohmann::json& v, uint64_t& out, uint64_t lo,
                uint64_t hi) const {
    // nlohmann keeps integers that fit u64 as unsigned and negative ones as signed; anything
    // else (a float, an integer past 2^64) is a float.
    uint64_t n = 0;
    if (v.is_number_unsigned()) {
      n = v.get<uint64_t>();
    } else if (v.is_number_integer() && v.get<int64_t>() >= 0) {
      n = static_cast<uint64_t>(v.get<int64_t>());
    } else {
      return Bad(key, "is not a non-negative integer (" + v.dump() + ")");
    }
    if (n < lo || n > hi)
      return Bad(key, "is " + std::to_string(n) + ", outside " + std::to_string(lo) + ".." +
                          std::to_string(hi));
    out = n;
    return Status::Ok();
  }
  Status Missing(const char* key) const {
    return Status::Corruption(where_ + ": field \"" + key + "\" is missing");
  }
  Status Bad(const char* key, const std::string& why) const {
    return Status::Corruption(where_ + ": field \"" + key + "\" " + why);
  }

  const nlohmann::json& obj_;
  std::string where_;
};

}  // namespace cairn
