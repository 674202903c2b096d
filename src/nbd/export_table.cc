// ExportTable: the store and the shared vdisk handles behind the nbdkit plugin (export_table.h).
#include "nbd/export_table.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>

namespace cairn::nbd {
namespace {

std::string Joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "'" : ", '") + n + "'";
  return s.empty() ? "none" : s;
}

std::string Describe(const VdiskInfo& i) {
  std::string d = "cairn vdisk '" + i.name + "': " + std::string(VdiskModeName(i.mode)) + ", " +
                  std::to_string(i.size) + " bytes, " + std::to_string(i.block_size) +
                  "-byte blocks";
  if (i.read_only) d += ", read-only";
  if (!i.template_name.empty())
    d += ", template " + std::string(i.template_in_system ? "system:" : "") + i.template_name;
  return d;
}

}  // namespace

int ErrnoOf(const Status& s) {
  switch (s.code()) {
    case Code::kOk:
      return 0;
    case Code::kInvalidArgument:
      return EINVAL;
    case Code::kPermissionDenied:
      return EROFS;
    case Code::kNoSpace:
      return ENOSPC;
    case Code::kNotFound:
      return ENOENT;
    case Code::kBusy:
      return EBUSY;
    case Code::kUnsupported:
      return ENOTSUP;
    default:
      return EIO;
  }
}

int RequestErrnoOf(const Status& s) {
  const int e = ErrnoOf(s);
  return e == ENOENT || e == EBUSY ? EIO : e;
}

std::string MessageFor(const std::string& vdisk, const Status& s) {
  if (s.message().find("vdisk '" + vdisk + "'") != std::string::npos) return s.message();
  return "vdisk '" + vdisk + "': " + s.message();
}

std::string StatsLine(const Export& e) {
  const ExportStats& s = e.stats;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "vdisk '%s': %llu connections; %llu reads (%llu bytes), %llu writes (%llu bytes, "
                "%llu with FUA), %llu zeroes (%llu bytes), %llu trims (%llu bytes), %llu flushes, "
                "%llu block status requests, %llu errors; %llu blocks rewritten by cleaning, %llu "
                "groups left uncleaned",
                e.name.c_str(), (unsigned long long)s.connections.load(),
                (unsigned long long)s.reads.load(), (unsigned long long)s.bytes_read.load(),
                (unsigned long long)s.writes.load(), (unsigned long long)s.bytes_written.load(),
                (unsigned long long)s.fua.load(), (unsigned long long)s.zeros.load(),
                (unsigned long long)s.bytes_zeroed.load(), (unsigned long long)s.trims.load(),
                (unsigned long long)s.bytes_trimmed.load(), (unsigned long long)s.flushes.load(),
                (unsigned long long)s.extents.load(), (unsigned long long)s.errors.load(),
                (unsigned long long)(e.disk ? e.disk->cleaned_blocks() : 0),
                (unsigned long long)(e.disk ? e.disk->uncleaned_groups() : 0));
  return buf;
}

std::string CacheLine(const CacheStats& c) {
  if (c.capacity == 0) return "hot cache: off";
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "hot cache: %llu bytes, %llu held in %llu chunks; %llu hits, %llu misses (hit "
                "ratio %.3f), %llu insertions, %llu evictions, %llu declined",
                (unsigned long long)c.capacity, (unsigned long long)c.bytes,
                (unsigned long long)c.entries, (unsigned long long)c.hits,
                (unsigned long long)c.misses, c.hit_ratio, (unsigned long long)c.insertions,
                (unsigned long long)c.evictions, (unsigned long long)c.declined);
  return buf;
}

Status ExportTable::OpenRepository(const std::string& password) {
  std::lock_guard lk(mu_);
  OpenOptions o;
  o.writable = !cfg_.readonly;
  o.threads = cfg_.threads;
  o.user = cfg_.user;
  o.cache_size = cfg_.cache_size;
  o.default_cache_size = kServerCacheSize;
  o.password = password;
  auto r = Repository::Open(cfg_.repo, o);
  std::fill(o.password.begin(), o.password.end(), '\0');
  if (!r.ok()) return r.status();
  repo_ = std::move(r.value());
  return Status::Ok();
}

Result<std::unique_ptr<Export>> ExportTable::OpenExport(const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(VdiskInfo info, repo_->VdiskStat(name, false));
  auto e = std::make_unique<Export>();
  e->name = name;
  e->writable = !cfg_.readonly && !info.read_only;
  e->info = info;
  auto d = repo_->OpenVdisk(name, e->writable);
  if (!d.ok()) {
    if (d.status().message().find("vdisk '" + name + "'") != std::string::npos) return d.status();
    return d.status().WithContext("vdisk '" + name + "'");
  }
  e->disk = std::move(d.value());
  return e;
}

Status ExportTable::Validate() {
  if (cfg_.vdisks.empty()) return Served().status();
  std::lock_guard lk(mu_);
  if (!repo_) return Status::Invalid("the repository is not open");
  for (const auto& name : cfg_.vdisks) {
    auto e = OpenExport(name);
    if (!e.ok()) return e.status();
    CAIRN_RETURN_IF_ERROR((*e)->disk->Flush());
  }
  return Status::Ok();
}

Result<std::vector<VdiskInfo>> ExportTable::Served() {
  std::lock_guard lk(mu_);
  if (!repo_) return Status::Invalid("the repository is not open");
  CAIRN_ASSIGN_OR_RETURN(auto all, repo_->ListVdisks());
  if (cfg_.vdisks.empty()) {
    // An interrupted snapshot or rm cannot be opened: not offered (a named one is refused).
    std::erase_if(all, [](const VdiskInfo& i) { return i.incomplete; });
    return all;
  }
  std::vector<VdiskInfo> out;
  for (const auto& name : cfg_.vdisks) {
    auto it = std::find_if(all.begin(), all.end(), [&](const auto& i) { return i.name == name; });
    if (it == all.end())
      return Status::NotFound("vdisk '" + name + "' not found in the repository " + cfg_.repo +
                              (cfg_.user.empty() ? "" : " (store of user " + cfg_.user + ")"));
    out.push_back(*it);
  }
  return out;
}

Result<std::string> ExportTable::Resolve(const std::string& name) {
  if (!name.empty()) {
    if (cfg_.vdisks.empty() ||
        std::find(cfg_.vdisks.begin(), cfg_.vdisks.end(), name) != cfg_.vdisks.end())
      return name;
    return Status::NotFound("no export '" + name + "': this server serves " + Joined(cfg_.vdisks));
  }
  if (!cfg_.vdisks.empty()) return cfg_.vdisks.front();
  CAIRN_ASSIGN_OR_RETURN(auto all, Served());
  if (all.size() == 1) return all.front().name;
  std::vector<std::string> names;
  for (const auto& i : all) names.push_back(i.name);
  return Status::NotFound("no default export: name a vdisk as the export (one of " + Joined(names) +
                          ")");
}

Result<Export*> ExportTable::Acquire(const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(std::string resolved, Resolve(name));
  std::lock_guard lk(mu_);
  if (!repo_) return Status::Invalid("the repository is not open");
  auto it = exports_.find(resolved);
  if (it != exports_.end()) return it->second.get();
  CAIRN_ASSIGN_OR_RETURN(auto e, OpenExport(resolved));
  Export* p = e.get();
  exports_.emplace(resolved, std::move(e));
  return p;
}

Result<std::vector<std::pair<std::string, std::string>>> ExportTable::List() {
  CAIRN_ASSIGN_OR_RETURN(auto served, Served());
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& i : served) out.emplace_back(i.name, Describe(i));
  return out;
}

std::vector<std::string> ExportTable::Close() {
  std::lock_guard lk(mu_);
  std::vector<std::string> lines;
  for (auto& [name, e] : exports_) {
    if (e->writable) {
      Status s = e->disk->Flush();
      if (!s.ok()) lines.push_back("flush on close failed: " + MessageFor(name, s));
    }
    lines.push_back(StatsLine(*e));  // before the reset: the line reads the disk's counters
    e->disk.reset();
  }
  exports_.clear();
  if (repo_) lines.push_back(CacheLine(repo_->HotCacheStats()));
  repo_.reset();
  return lines;
}

}  // namespace cairn::nbd
