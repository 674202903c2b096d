// Defaults shared by every Index implementation.
#include "index/index.h"

namespace cairn {

Result<std::vector<std::optional<std::string>>> Index::MultiGet(
    const std::vector<std::string>& keys) {
  std::vector<std::optional<std::string>> out;
  out.reserve(keys.size());
  for (const auto& k : keys) {
    CAIRN_ASSIGN_OR_RETURN(auto v, Get(k));
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace cairn
