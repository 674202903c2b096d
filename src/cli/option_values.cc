// CheckOptionValues: see option_values.h.
#include "cli/option_values.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/common.h"

namespace cairn::cli {
namespace {

bool AllDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// A whole number in decimal, normalised in place (leading zeros dropped); an error message, or
// "" when it is one.
std::string WholeNumber(std::string& v, bool is_signed) {
  std::string_view digits = v;
  const bool negative = is_signed && !digits.empty() && digits.front() == '-';
  if (negative) digits.remove_prefix(1);
  if (!AllDigits(digits)) {
    if (!is_signed && !v.empty() && v.front() == '-') return "'" + v + "' is negative";
    return "'" + v + "' is not a whole number in decimal digits";
  }
  const size_t nz = digits.find_first_not_of('0');
  digits = nz == std::string_view::npos ? std::string_view("0") : digits.substr(nz);
  bool fits;
  if (is_signed) {
    int64_t x;
    const std::string s = (negative ? "-" : "") + std::string(digits);
    fits = std::from_chars(s.data(), s.data() + s.size(), x).ec == std::errc();
    if (fits) v = s;
  } else {
    uint64_t x;
    fits = std::from_chars(digits.data(), digits.data() + digits.size(), x).ec == std::errc();
    if (fits) v = std::string(digits);
  }
  return fits ? "" : "'" + v + "' is out of range";
}

std::string RealNumber(const std::string& v) {
  if (v.empty() || v.find_first_not_of("0123456789.eE+-") != std::string::npos)
    return "'" + v + "' is not a decimal number";
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (end != v.c_str() + v.size()) return "'" + v + "' is not a decimal number";
  if (!std::isfinite(x)) return "'" + v + "' is out of range";
  return "";
}

void AddCheck(CLI::Option& opt) {
  // The value type, without the descriptions of the checks CLI11 appends ("UINT:POSITIVE").
  std::string type = opt.get_type_name();
  type = type.substr(0, type.find(':'));
  if (opt.get_expected_min() == 0 && opt.get_expected_max() == 0) return;  // a flag
  if (type == "UINT" || type == "INT") {
    const bool is_signed = type == "INT";
    opt.transform(CLI::Validator([is_signed](std::string& v) { return WholeNumber(v, is_signed); },
                                 "", "decimal"));
  } else if (type == "FLOAT") {
    opt.transform(CLI::Validator([](std::string& v) { return RealNumber(v); }, "", "finite"));
  } else if (opt.nonpositional()) {
    opt.transform(CLI::Validator(
        [](std::string& v) { return v.empty() ? std::string("an empty value") : std::string(); },
        "", "non-empty"));
  }
}

}  // namespace

void CheckOptionValues(CLI::App& app) {
  for (CLI::App* a : AppTree(app))
    for (CLI::Option* opt : a->get_options()) AddCheck(*opt);
}

}  // namespace cairn::cli
