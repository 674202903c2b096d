// `cairn forget|maintain|stat|check|reencrypt`: retention, giving space back, statistics,
// verification and re-sealing chunks at rest.
#include <cstdio>
#include <iostream>

#include "cairn/admin.h"
#include "cairn/repository.h"
#include "cli/common.h"
#include "cli/progress.h"

namespace cairn::cli {
namespace {

// ------------------------------------------------------------------ forget

struct ForgetArgs {
  std::string repo, name;
  uint64_t keep_last = 0;
  bool allow_remove_all = false;
};

int CmdForget(const Globals& g, const ForgetArgs& a) {
  // Like restic's forget: a policy that keeps nothing empties the object (or every object), so
  // it runs only when the user says so explicitly.
  if (a.keep_last == 0 && !a.allow_remove_all)
    return Fail(
        Status::Invalid("--keep-last 0 would remove every version of " +
                        (a.name.empty() ? std::string("every object") : "'" + a.name + "'") +
                        "; add --unsafe-allow-remove-all if that is what you want"));
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  std::optional<std::string> target;
  if (!a.name.empty()) target = a.name;
  auto n = (*repo)->Forget(target, a.keep_last);
  if (!n.ok()) return Fail(n.status());
  if (g.json)
    PrintJson({{"versions_removed", *n}});
  else if (!g.quiet)
    std::printf("removed %llu version(s)\n", (unsigned long long)*n);
  return 0;
}

RunFn DefineForget(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<ForgetArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name, "object (default: every object)");
  cmd.add_option("--keep-last", a->keep_last, "versions to keep per object")
      ->required()
      ->check(CLI::NonNegativeNumber);
  cmd.add_flag("--unsafe-allow-remove-all", a->allow_remove_all,
               "allow --keep-last 0, which removes every version");
  return [a, &g = ctx.globals] { return CmdForget(g, *a); };
}

// ------------------------------------------------------------------ maintain

struct MaintainArgs {
  std::string repo, max_bytes;
  double threshold = 0.5, max_seconds = 0;
};

void PrintMaintain(const Globals& g, const MaintainResult& r) {
  if (g.json) {
    PrintJson({{"segments_compacted", r.segments_compacted},
               {"segments_removed", r.segments_removed},
               {"chunks_moved", r.chunks_moved},
               {"bytes_moved", r.bytes_moved},
               {"bytes_released", r.bytes_released},
               {"chunks_resealed", r.chunks_resealed},
               {"finished", r.finished}});
    return;
  }
  std::printf(
      "maintain: %llu segment(s) removed (%llu compacted), %llu chunks (%s) moved, %s "
      "released, %llu chunks re-sealed by policy%s\n",
      (unsigned long long)r.segments_removed, (unsigned long long)r.segments_compacted,
      (unsigned long long)r.chunks_moved, HumanBytes(r.bytes_moved).c_str(),
      HumanBytes(r.bytes_released).c_str(), (unsigned long long)r.chunks_resealed,
      r.finished ? "" : "; stopped by a limit, run again to continue");
}

int CmdMaintain(const Globals& g, const MaintainArgs& a) {
  MaintainRequest req;
  req.live_threshold = a.threshold;
  if (!a.max_bytes.empty()) {
    auto b = ParseSize(a.max_bytes);
    if (!b.ok()) return Fail(b.status());
    req.max_bytes = *b;
  }
  if (a.max_seconds > 0) req.max_seconds = a.max_seconds;
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  ProgressBar bar("maintain", !g.quiet);
  req.progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  auto r = (*repo)->Maintain(req);
  bar.Finish();
  if (!r.ok()) return Fail(r.status());
  PrintMaintain(g, *r);
  return 0;
}

RunFn DefineMaintain(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<MaintainArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("--threshold", a->threshold, "compact segments less live than this (0.5)")
      ->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--max-bytes", a->max_bytes, "stop after moving this much (e.g. 512M)");
  cmd.add_option("--max-seconds", a->max_seconds, "stop after this many seconds")
      ->check(CLI::NonNegativeNumber);
  return [a, &g = ctx.globals] { return CmdMaintain(g, *a); };
}

// ------------------------------------------------------------------ stat

json StatJson(const RepoStats& s) {
  json j = {{"objects", s.objects},
            {"versions", s.versions},
            {"manifests", s.manifests},
            {"vdisks", s.vdisks},
            {"vdisk_blocks", s.vdisk_blocks},
            {"logical_bytes", s.logical_bytes},
            {"unique_chunks", s.unique_chunks},
            {"unreferenced_chunks", s.unreferenced_chunks},
            {"unique_bytes", s.unique_bytes},
            {"stored_bytes", s.stored_bytes},
            {"segments", s.segments},
            {"segment_bytes", s.segment_bytes},
            {"disk_bytes", s.disk_bytes},
            {"used_bytes", s.used_bytes},
            {"free_extents", s.free_extents},
            {"free_bytes", s.free_bytes},
            {"largest_free_extent", s.largest_free_extent},
            {"reclaimable_bytes", s.reclaimable_bytes},
            {"fragmentation", s.fragmentation},
            {"dedup_ratio", s.dedup_ratio},
            {"compression_ratio", s.compression_ratio},
            {"total_ratio", s.total_ratio},
            {"store", s.store},
            {"encryption", s.encryption},
            {"current_key_version", s.current_key_version},
            {"oldest_seal", s.oldest_seal},
            {"min_generation", s.min_generation},
            {"max_generation", s.max_generation}};
  json kv = json::object();
  for (const auto& [v, n] : s.chunks_by_key_version) kv[std::to_string(v)] = n;
  j["chunks_by_key_version"] = kv;
  return j;
}

// The store and, when encrypted, its key versions and seal ages.
void PrintStatEncryption(const RepoStats& s) {
  std::printf("store:               %s\n", s.store.c_str());
  std::printf("encryption:          %s\n", s.encryption.c_str());
  if (s.encryption == "none") return;
  std::string kv;
  for (const auto& [v, n] : s.chunks_by_key_version)
    kv +=
        (kv.empty() ? "" : ", ") + std::string("v") + std::to_string(v) + ": " + std::to_string(n);
  std::printf("key version:         %u current; chunks by key version: %s\n", s.current_key_version,
              kv.empty() ? "none" : kv.c_str());
  if (s.oldest_seal)
    std::printf("oldest seal:         %s (re-sealed %u..%u times)\n",
                TimeString(s.oldest_seal * 1000000000ull).c_str(),
                s.min_generation ? s.min_generation - 1 : 0,
                s.max_generation ? s.max_generation - 1 : 0);
}

// Objects, bytes, chunks, segments, free space and ratios.
void PrintStatSpace(const RepoStats& s) {
  std::printf("objects:             %llu\n", (unsigned long long)s.objects);
  std::printf("versions:            %llu\n", (unsigned long long)s.versions);
  std::printf("vdisks:              %llu (%llu blocks in their own maps)\n",
              (unsigned long long)s.vdisks, (unsigned long long)s.vdisk_blocks);
  std::printf("logical bytes:       %s (%llu)\n", HumanBytes(s.logical_bytes).c_str(),
              (unsigned long long)s.logical_bytes);
  std::printf("unique chunks:       %llu (%s)\n", (unsigned long long)s.unique_chunks,
              HumanBytes(s.unique_bytes).c_str());
  std::printf("unreferenced chunks: %llu\n", (unsigned long long)s.unreferenced_chunks);
  std::printf("stored bytes:        %s (%llu)\n", HumanBytes(s.stored_bytes).c_str(),
              (unsigned long long)s.stored_bytes);
  std::printf("segments:            %llu, %s on disk\n", (unsigned long long)s.segments,
              HumanBytes(s.disk_bytes).c_str());
  std::printf("used / free extents: %s used, %llu free extents (%s, largest %s)\n",
              HumanBytes(s.used_bytes).c_str(), (unsigned long long)s.free_extents,
              HumanBytes(s.free_bytes).c_str(), HumanBytes(s.largest_free_extent).c_str());
  std::printf("fragmentation:       %.2f\n", s.fragmentation);
  std::printf(
      "reclaimable:         %s (free extents: reused by new chunks; `cairn maintain` "
      "trims and compacts them)\n",
      HumanBytes(s.reclaimable_bytes).c_str());
  std::printf("dedup ratio:         %.2fx\n", s.dedup_ratio);
  std::printf("compression ratio:   %.2fx\n", s.compression_ratio);
  std::printf("total ratio:         %.2fx (logical / stored)\n", s.total_ratio);
}

int CmdStat(const Globals& g, const std::string& repo_path) {
  auto repo = OpenRepo(repo_path, false, g);
  if (!repo.ok()) return Fail(repo.status());
  auto s = (*repo)->Stats();
  if (!s.ok()) return Fail(s.status());
  if (g.json) {
    PrintJson(StatJson(*s));
    return 0;
  }
  PrintStatEncryption(*s);
  PrintStatSpace(*s);
  return 0;
}

RunFn DefineStat(CLI::App& cmd, Context& ctx) {
  auto repo = std::make_shared<std::string>();
  cmd.add_option("REPO", *repo)->required();
  return [repo, &g = ctx.globals] { return CmdStat(g, *repo); };
}

// ------------------------------------------------------------------ check

struct CheckArgs {
  std::string repo;
  bool read_data = false;
};

// The password and the key files first: a problem there is an error (exit 1), not a finding
// about the stores. Sets `pw` (empty for an unencrypted repository); returns 0 when fine.
int CheckKeys(const Globals& g, const std::string& repo, std::string& pw) {
  auto p = RepoPassword(g, repo);
  if (!p.ok()) return Fail(p.status());
  pw = std::move(*p);
  if (pw.empty()) return 0;
  auto kv = admin::ListKeyVersions(repo, pw);
  return kv.ok() ? 0 : Fail(kv.status());
}

// The stores `check` covers: the one --user or --system names, else the system store and every
// user's ("" is the system store).
Result<std::vector<std::string>> StoresToCheck(const Globals& g, const std::string& repo,
                                               const std::string& pw) {
  if (g.system && !g.user.empty()) return Status::Invalid("--user and --system exclude each other");
  if (!g.user.empty()) return std::vector<std::string>{g.user};
  std::vector<std::string> stores{""};
  if (g.system) return stores;
  CAIRN_ASSIGN_OR_RETURN(auto users, admin::ListUsers(repo, pw));
  for (const auto& u : users) stores.push_back(u.name);
  return stores;
}

// One store's outcome: its report, or why it could not be checked (`opened` false).
struct StoreCheck {
  std::string user;  // "" = the system store
  bool opened = false;
  Status failure;  // why it could not be checked
  CheckReport report;
};

std::string StoreLabel(const std::string& user) {
  return user.empty() ? "system store" : "store of user " + user;
}

// Checks one store, read-only. A store that cannot be opened is a finding (it names why).
StoreCheck CheckOneStore(const Globals& g, const CheckArgs& a, const std::string& pw,
                         const std::string& user, ProgressBar& bar) {
  StoreCheck sc;
  sc.user = user;
  OpenOptions o;
  o.threads = g.threads;
  o.user = user;
  o.password = pw;
  auto repo = Repository::Open(a.repo, o);
  SecureWipe(o.password);
  if (!repo.ok()) {
    sc.failure = repo.status();
    sc.report.errors.push_back("could not check the " + StoreLabel(user) + ": " +
                               repo.status().message());
    return sc;
  }
  CheckOptions co;
  co.read_data = a.read_data;
  co.progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  auto r = (*repo)->Check(co);
  if (!r.ok()) {
    sc.failure = r.status();
    sc.report.errors.push_back("could not check the " + StoreLabel(user) + ": " +
                               r.status().message());
    return sc;
  }
  sc.opened = true;
  sc.report = std::move(*r);
  return sc;
}

// The totals over every store checked; a user store's findings name it.
CheckReport MergeChecks(const std::vector<StoreCheck>& all) {
  CheckReport t;
  for (const auto& sc : all) {
    const CheckReport& r = sc.report;
    t.chunks += r.chunks;
    t.manifests += r.manifests;
    t.versions += r.versions;
    t.chunks_read += r.chunks_read;
    t.bytes_read += r.bytes_read;
    const std::string pre = sc.user.empty() || !sc.opened ? "" : "user " + sc.user + ": ";
    for (const auto& e : r.errors) t.errors.push_back(pre + e);
    for (const auto& w : r.warnings) t.warnings.push_back(pre + w);
  }
  return t;
}

void PrintCheck(const Globals& g, const std::vector<StoreCheck>& all, bool read_data) {
  CheckReport r = MergeChecks(all);
  if (g.json) {
    json stores = json::array();
    for (const auto& sc : all)
      stores.push_back({{"store", sc.user.empty() ? "system" : "user:" + sc.user},
                        {"checked", sc.opened},
                        {"clean", sc.report.clean()},
                        {"errors", sc.report.errors.size()}});
    PrintJson({{"clean", r.clean()},
               {"chunks", r.chunks},
               {"manifests", r.manifests},
               {"versions", r.versions},
               {"chunks_read", r.chunks_read},
               {"bytes_read", r.bytes_read},
               {"errors", r.errors},
               {"warnings", r.warnings},
               {"stores", stores}});
    return;
  }
  for (const auto& w : r.warnings) std::printf("warning: %s\n", w.c_str());
  for (const auto& e : r.errors) std::printf("error: %s\n", e.c_str());
  std::string stores;
  for (const auto& sc : all)
    stores += (stores.empty() ? "" : ", ") + std::string(sc.user.empty() ? "system" : sc.user) +
              (sc.opened ? "" : " (not checked)");
  std::printf(
      "%s: %llu chunks, %llu manifests, %llu versions checked%s in %zu store(s) (%s); %zu "
      "error(s)\n",
      r.clean() ? "clean" : "PROBLEMS FOUND", (unsigned long long)r.chunks,
      (unsigned long long)r.manifests, (unsigned long long)r.versions,
      read_data ? (", " + std::to_string(r.chunks_read) + " chunks read and verified").c_str() : "",
      all.size(), stores.c_str(), r.errors.size());
}

// Checks the system store and every user's (the password unlocks them all), or the one store
// --user/--system names. A store that cannot be opened is reported as not checked (exit 3).
int CmdCheck(const Globals& g, const CheckArgs& a) {
  std::string pw;
  if (int rc = CheckKeys(g, a.repo, pw); rc != 0) return rc;
  auto stores = StoresToCheck(g, a.repo, pw);
  if (!stores.ok()) {
    SecureWipe(pw);
    return Fail(stores.status());
  }
  ProgressBar bar("check", !g.quiet);
  std::vector<StoreCheck> all;
  for (const auto& user : *stores) {
    all.push_back(CheckOneStore(g, a, pw, user, bar));
    // The store asked for (or the system store) that fails for another reason than damage
    // found while opening it is an error of the command, as before (exit 1).
    const Status& f = all.back().failure;
    if (!f.ok() && f.code() != Code::kCorruption && (user.empty() || !g.user.empty())) {
      SecureWipe(pw);
      bar.Finish();
      return Fail(f);
    }
  }
  SecureWipe(pw);
  bar.Finish();
  PrintCheck(g, all, a.read_data);
  return MergeChecks(all).clean() ? 0 : 3;
}

RunFn DefineCheck(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<CheckArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_flag("--read-data", a->read_data, "read and verify every chunk");
  return [a, &g = ctx.globals] { return CmdCheck(g, *a); };
}

// ------------------------------------------------------------------ reencrypt

struct ReencryptArgs {
  std::string repo, older_than, max_bytes;
  double max_seconds = 0;
};

Result<ReencryptRequest> ReencryptRequestFrom(const ReencryptArgs& a) {
  ReencryptRequest req;
  if (!a.older_than.empty()) {
    auto d = ParseDuration(a.older_than);
    if (!d.ok()) return d.status().WithContext("--older-than");
    req.older_than_seconds = *d;
  }
  if (!a.max_bytes.empty()) {
    auto b = ParseSize(a.max_bytes);
    if (!b.ok()) return b.status().WithContext("--max-bytes");
    req.max_bytes = *b;
  }
  if (a.max_seconds > 0) req.max_seconds = a.max_seconds;
  return req;
}

void PrintReencrypt(const Globals& g, const ReencryptResult& r) {
  if (g.json) {
    PrintJson({{"chunks", r.chunks},
               {"bytes", r.bytes},
               {"rows", r.rows},
               {"remaining", r.remaining},
               {"finished", r.finished}});
  } else if (!g.quiet) {
    std::printf("reencrypt: %llu chunks (%s) and %llu metadata rows re-sealed%s\n",
                (unsigned long long)r.chunks, HumanBytes(r.bytes).c_str(),
                (unsigned long long)r.rows,
                r.finished ? ""
                           : ("; stopped by a limit with " + std::to_string(r.remaining) +
                              " chunks to go, run again to continue")
                                 .c_str());
  }
}

int CmdReencrypt(const Globals& g, const ReencryptArgs& a) {
  auto req = ReencryptRequestFrom(a);
  if (!req.ok()) return Fail(req.status());
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  ProgressBar bar("reencrypt", !g.quiet);
  req->progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  auto r = (*repo)->Reencrypt(*req);
  bar.Finish();
  if (!r.ok()) return Fail(r.status());
  PrintReencrypt(g, *r);
  return 0;
}

RunFn DefineReencrypt(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<ReencryptArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("--older-than", a->older_than, "only chunks sealed longer ago (e.g. 90d)");
  cmd.add_option("--max-bytes", a->max_bytes, "stop after re-sealing this much");
  cmd.add_option("--max-seconds", a->max_seconds, "stop after this many seconds")
      ->check(CLI::NonNegativeNumber);
  return [a, &g = ctx.globals] { return CmdReencrypt(g, *a); };
}

constexpr CommandSpec kMaintenanceCommands[] = {
    {"forget", "keep the newest N versions, remove the rest", DefineForget},
    {"maintain", "give space back: release, compact, trim", DefineMaintain},
    {"stat", "repository statistics", DefineStat},
    {"check", "verify refcounts, extents and (--read-data) data of every store", DefineCheck},
    {"reencrypt", "re-salt and re-seal chunks at rest", DefineReencrypt},
};

}  // namespace

std::span<const CommandSpec> MaintenanceCommands() { return kMaintenanceCommands; }

}  // namespace cairn::cli
