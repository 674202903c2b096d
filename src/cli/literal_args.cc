// LiteralArgs: see literal_args.h. A token is prefix_ + the argument's index, with a prefix that
// starts with a control character and that no argument contains, so no argument can be taken
// for a token.
#include "cli/literal_args.h"

#include <algorithm>

#include "cli/common.h"

namespace cairn::cli {
namespace {

bool IsBracketed(const std::string& s) {
  return s.size() >= 2 && s.front() == '[' && s.back() == ']';
}

}  // namespace

LiteralArgs::LiteralArgs(int argc, const char* const* argv)
    : args_(argv, argv + argc), literal_(static_cast<size_t>(argc)) {
  prefix_ =
      "\x01"
      "cairn-arg-";
  auto contains_prefix = [&] {
    return std::any_of(args_.begin(), args_.end(),
                       [&](const std::string& a) { return a.find(prefix_) != std::string::npos; });
  };
  while (contains_prefix()) prefix_ += '\x01';
  prefix_ += '-';
  bool options_end = false;  // after "--" every argument is a value
  for (size_t i = 1; i < args_.size(); ++i) {
    std::string& a = args_[i];
    const std::string token = Token(i);
    if (a == "--") {
      options_end = true;
    } else if (IsBracketed(a)) {
      literal_[i] = a;
      a = token;
    } else if (!options_end && a.size() > 3 && a.starts_with("--") && a.back() == '=' &&
               a.find('=') == a.size() - 1) {
      // "--name=": an empty value (CLI11 would take the next argument as the value).
      literal_[i] = "";
      a += token;
    }
  }
  for (const auto& a : args_) ptrs_.push_back(a.c_str());
}

std::string LiteralArgs::Restore(std::string text) const {
  for (size_t i = 1; i < args_.size(); ++i) {
    if (!literal_[i]) continue;
    const std::string token = Token(i);
    for (size_t at = text.find(token); at != std::string::npos;
         at = text.find(token, at + literal_[i]->size()))
      text.replace(at, token.size(), *literal_[i]);
  }
  return text;
}

std::string LiteralArgs::Token(size_t i) const { return prefix_ + std::to_string(i) + '\x01'; }

void LiteralArgs::RestoreIn(CLI::App& app) const {
  if (std::none_of(literal_.begin(), literal_.end(), [](const auto& l) { return l.has_value(); }))
    return;
  for (CLI::App* a : AppTree(app))
    for (CLI::Option* opt : a->get_options())
      opt->transform([this](std::string v) { return Restore(std::move(v)); });
  app.failure_message([this](const CLI::App* a, const CLI::Error& e) {
    return Restore(CLI::FailureMessage::simple(a, e));
  });
}

}  // namespace cairn::cli
