// LiteralArgs: see literal_args.h. A token is prefix_ + the argument's index, with a prefix that
// starts with a control character and that no argument contains, so no argument can be taken
// for a token.
#include "cli/literal_args.h"

#include <algorithm>

namespace cairn::cli {
namespace {

bool IsBracketed(const std::string& s) {
  return s.size() >= 2 && s.front() == '[' && s.back() == ']';
}

// Each app of the tree under `app`, `app` first.
void CollectApps(CLI::App& app, std::vector<CLI::App*>& out) {
  out.push_back(&app);
  for (CLI::App* sub : app.get_subcommands(std::function<bool(CLI::App*)>{}))
    CollectApps(*sub, out);
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
  for (size_t i = 1; i < args_.size(); ++i) {
    if (!IsBracketed(args_[i])) continue;
    literal_[i] = args_[i];
    args_[i] = prefix_ + std::to_string(i) + '\x01';
  }
  for (const auto& a : args_) ptrs_.push_back(a.c_str());
}

std::string LiteralArgs::Restore(std::string text) const {
  for (size_t i = 1; i < args_.size(); ++i) {
    if (literal_[i].empty()) continue;
    for (size_t at = text.find(args_[i]); at != std::string::npos;
         at = text.find(args_[i], at + literal_[i].size()))
      text.replace(at, args_[i].size(), literal_[i]);
  }
  return text;
}

void LiteralArgs::RestoreIn(CLI::App& app) const {
  if (std::all_of(literal_.begin(), literal_.end(), [](const auto& l) { return l.empty(); }))
    return;
  std::vector<CLI::App*> apps;
  CollectApps(app, apps);
  for (CLI::App* a : apps)
    for (CLI::Option* opt : a->get_options())
      opt->transform([this](std::string v) { return Restore(std::move(v)); });
  app.failure_message([this](const CLI::App* a, const CLI::Error& e) {
    return Restore(CLI::FailureMessage::simple(a, e));
  });
}

}  // namespace cairn::cli
