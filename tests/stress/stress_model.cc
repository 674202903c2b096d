// The cairn-stress model: contents, events, verification after a crash, persistence
// (stress_model.h).
#include "tests/stress/stress_model.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>

#include "cairn/io.h"
#include "primitives/hash.h"
#include "tests/test_util.h"

namespace cairn::stress {
namespace {

// 32 blocks of 16 KiB that many contents share (so chunks are deduplicated across objects and
// their reference counts go up and down).
const std::vector<uint8_t>& PoolPiece(uint64_t i) {
  static const auto* pool = [] {
    auto* p = new std::vector<std::vector<uint8_t>>();
    for (uint64_t k = 0; k < 32; k++) {
      std::mt19937_64 rng(1000 + k);
      std::vector<uint8_t> b(16384);
      for (auto& x : b) x = static_cast<uint8_t>(k % 2 ? rng() : "cairn stress "[rng() % 13]);
      p->push_back(std::move(b));
    }
    return p;
  }();
  return (*pool)[i % pool->size()];
}

std::string Hex(const Digest& d) { return d.Hex(); }

Digest FromHex(const std::string& s) {
  Digest d;
  for (size_t i = 0; i < d.bytes.size() && 2 * i + 1 < s.size(); i++)
    d.bytes[i] = static_cast<uint8_t>(std::stoi(s.substr(2 * i, 2), nullptr, 16));
  return d;
}

}  // namespace

namespace {

std::vector<uint8_t> PlainContent(uint64_t seed, uint64_t size) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> out;
  out.reserve(size + 16384);
  while (out.size() < size) {
    switch (rng() % 3) {
      case 0: {
        const auto& p = PoolPiece(rng());
        out.insert(out.end(), p.begin(), p.end());
        break;
      }
      case 1:
        for (size_t n = 512 + rng() % 8192; n > 0; n--) out.push_back(static_cast<uint8_t>(rng()));
        break;
      default:
        for (size_t n = 512 + rng() % 8192; n > 0; n--)
          out.push_back(static_cast<uint8_t>("stress text of cairn "[rng() % 21]));
    }
  }
  out.resize(size);
  return out;
}

}  // namespace

// Every other seed gives an edited copy of one of four base contents (a few bytes overwritten
// at places drawn from the seed), so successive versions of an object are often edits of each
// other, which the store keeps as delta chunks (ADR 0020) under the same crashes.
std::vector<uint8_t> Content(uint64_t seed, uint64_t size) {
  if (seed % 2 != 0) return PlainContent(seed, size);
  std::vector<uint8_t> out = PlainContent(1000003 + 2 * ((seed >> 1) % 4), size);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 3 && !out.empty(); i++)
    out[rng() % out.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
  return out;
}

Digest HashOf(std::span<const uint8_t> data) {
  static const auto kHasher = MakeHasher(HashAlgo::kBlake3);
  return kHasher->Hash(data);
}

ContentRef MakeRef(uint64_t seed, uint64_t size) {
  return {seed, size, HashOf(Content(seed, size))};
}

std::vector<uint8_t> DiskData(uint64_t seed, uint64_t len) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> d(len);
  if (rng() % 4 == 0) return d;  // zeros: whole blocks become holes
  for (auto& x : d) x = static_cast<uint8_t>(rng() % 8 ? rng() : 0);
  return d;
}

// ---- events

void Model::Journal(const std::string& line) {
  if (journal_fd_ < 0) return;
  std::string l = line + "\n";
  (void)!::write(journal_fd_, l.data(), l.size());  // O_APPEND: one write per line
}

void Model::BeginPut(const std::string& obj, const ContentRef& c) {
  std::lock_guard lk(mu_);
  objects_[obj].doubt = {Doubt::kPut, c, {}, 0};
  Journal("P " + obj + " " + std::to_string(c.seed) + " " + std::to_string(c.size) + " " +
          Hex(c.hash));
}

void Model::EndPut(const std::string& obj, uint64_t version) {
  std::lock_guard lk(mu_);
  auto& o = objects_[obj];
  o.versions[version] = o.doubt.content;
  o.doubt = {};
  Journal("p " + obj + " " + std::to_string(version));
}

void Model::BeginRemove(const std::string& obj, std::optional<uint64_t> version) {
  std::lock_guard lk(mu_);
  objects_[obj].doubt = {Doubt::kRemove, {}, version, 0};
  Journal("R " + obj + " " + (version ? std::to_string(*version) : std::string("*")));
}

void Model::EndRemove(const std::string& obj) {
  std::lock_guard lk(mu_);
  auto& o = objects_[obj];
  if (o.doubt.version)
    o.versions.erase(*o.doubt.version);
  else
    o.versions.clear();
  o.doubt = {};
  Journal("r " + obj);
}

void Model::BeginForget(const std::string& obj, uint64_t keep) {
  std::lock_guard lk(mu_);
  objects_[obj].doubt = {Doubt::kForget, {}, {}, keep};
  Journal("F " + obj + " " + std::to_string(keep));
}

void Model::EndForget(const std::string& obj) {
  std::lock_guard lk(mu_);
  auto& o = objects_[obj];
  while (o.versions.size() > o.doubt.keep) o.versions.erase(o.versions.begin());
  o.doubt = {};
  Journal("f " + obj);
}

void Model::Done(const std::string& op) {
  std::lock_guard lk(mu_);
  Journal("G " + op);
}

void Model::AddDisk(const std::string& disk, VdiskMode mode, uint64_t size, uint32_t block_size) {
  std::lock_guard lk(mu_);
  DiskModel d;
  d.mode = mode;
  d.block_size = block_size;
  d.image.assign(size, 0);
  const Digest zero = HashOf(std::vector<uint8_t>(block_size, 0));
  d.candidates.assign(size / block_size, {zero});
  disks_[disk] = std::move(d);
}

void Model::DiskWrite(const std::string& disk, uint64_t offset, uint64_t len, uint64_t seed) {
  std::lock_guard lk(mu_);
  auto& d = disks_.at(disk);
  auto data = DiskData(seed, len);
  std::copy(data.begin(), data.end(), d.image.begin() + offset);
  for (uint64_t b = offset / d.block_size; b * d.block_size < offset + len; b++)
    d.candidates[b].push_back(
        HashOf(std::span<const uint8_t>(d.image.data() + b * d.block_size, d.block_size)));
  Journal("W " + disk + " " + std::to_string(offset) + " " + std::to_string(len) + " " +
          std::to_string(seed));
}

void Model::EndFlush(const std::string& disk) {
  std::lock_guard lk(mu_);
  auto& d = disks_.at(disk);
  for (auto& c : d.candidates) c.erase(c.begin(), c.end() - 1);
  Journal("L " + disk);
}

std::map<uint64_t, ContentRef> Model::Versions(const std::string& obj) const {
  std::lock_guard lk(mu_);
  auto it = objects_.find(obj);
  return it == objects_.end() ? std::map<uint64_t, ContentRef>() : it->second.versions;
}

std::vector<uint8_t> Model::DiskImage(const std::string& disk) const {
  std::lock_guard lk(mu_);
  return disks_.at(disk).image;
}

std::vector<std::string> Model::Disks() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (const auto& [n, d] : disks_) out.push_back(n);
  return out;
}

// ---- verification

Status Model::Observe(Repository& repo, std::map<std::string, std::map<uint64_t, Digest>>& objects,
                      std::map<std::string, std::vector<uint8_t>>& disks) {
  CAIRN_ASSIGN_OR_RETURN(auto list, repo.List(""));
  for (const auto& info : list) {
    CAIRN_ASSIGN_OR_RETURN(auto versions, repo.Versions(info.name));
    for (const auto& v : versions) {
      testing::MemSink sink;
      CAIRN_RETURN_IF_ERROR(repo.Get(info.name, v.version, {}, sink).WithContext("verify"));
      objects[info.name][v.version] = HashOf(sink.data);
    }
  }
  for (const auto& [name, m] : disks_) {
    CAIRN_ASSIGN_OR_RETURN(auto disk, repo.OpenVdisk(name, false));
    std::vector<uint8_t> image(disk->size());
    CAIRN_RETURN_IF_ERROR(disk->Read(0, image));
    disks[name] = std::move(image);
  }
  return Status::Ok();
}

void Model::CompareObject(const std::string& name, const ObjectModel& m,
                          const std::map<uint64_t, Digest>& seen,
                          std::vector<std::string>& problems, Tally& tally) {
  auto same = [&](const std::map<uint64_t, ContentRef>& want) {
    if (want.size() != seen.size()) return false;
    for (const auto& [v, ref] : want) {
      auto it = seen.find(v);
      if (it == seen.end() || it->second != ref.hash) return false;
    }
    return true;
  };
  std::map<uint64_t, ContentRef> alt = m.versions;
  bool alt_valid = true;
  switch (m.doubt.kind) {
    case Doubt::kNone:
      alt_valid = false;
      break;
    case Doubt::kPut: {
      uint64_t top = m.versions.empty() ? 0 : m.versions.rbegin()->first;
      auto extra = seen.upper_bound(top);
      if (extra != seen.end()) alt[extra->first] = m.doubt.content;
      alt_valid = extra != seen.end();
      break;
    }
    case Doubt::kRemove:
      if (m.doubt.version)
        alt.erase(*m.doubt.version);
      else
        alt.clear();
      break;
    case Doubt::kForget:
      while (alt.size() > m.doubt.keep) alt.erase(alt.begin());
      break;
  }
  tally.objects_compared++;
  tally.versions_compared += seen.size();
  if (same(m.versions)) {
    if (m.doubt.kind != Doubt::kNone) tally.doubts_absent++;
    return;
  }
  if (alt_valid && same(alt)) {
    tally.doubts_applied++;
    return;
  }
  std::string want, got;
  for (const auto& [v, r] : m.versions) want += " " + std::to_string(v);
  for (const auto& [v, h] : seen) got += " " + std::to_string(v);
  problems.push_back("object " + name + ": the repository holds versions [" + got +
                     " ] with contents that do not match the model [" + want +
                     " ] (in doubt: operation " + std::to_string(m.doubt.kind) + ")");
}

void Model::CompareDisk(const std::string& name, const DiskModel& m,
                        const std::vector<uint8_t>& seen, std::vector<std::string>& problems,
                        Tally& tally) {
  if (seen.size() != m.image.size()) {
    problems.push_back("vdisk " + name + " has " + std::to_string(seen.size()) +
                       " bytes, the model " + std::to_string(m.image.size()));
    return;
  }
  for (size_t b = 0; b < m.candidates.size(); b++) {
    Digest h = HashOf(std::span<const uint8_t>(seen.data() + b * m.block_size, m.block_size));
    const auto& c = m.candidates[b];
    tally.disk_blocks_compared++;
    if (std::find(c.begin(), c.end(), h) == c.end())
      problems.push_back("vdisk " + name + " block " + std::to_string(b) +
                         " holds neither its flushed content nor any later write");
  }
}

Status Model::Verify(Repository& repo, std::vector<std::string>& problems, Tally& tally) {
  std::lock_guard lk(mu_);
  std::map<std::string, std::map<uint64_t, Digest>> objects;
  std::map<std::string, std::vector<uint8_t>> disks;
  CAIRN_RETURN_IF_ERROR(Observe(repo, objects, disks));
  CheckOptions co;
  co.read_data = true;
  CAIRN_ASSIGN_OR_RETURN(auto report, repo.Check(co));
  const size_t before = problems.size();
  for (const auto& e : report.errors) problems.push_back("check: " + e);
  for (const auto& [name, seen] : objects)
    if (!objects_.count(name)) problems.push_back("object " + name + " is not in the model");
  static const std::map<uint64_t, Digest> kNone;
  for (const auto& [name, m] : objects_) {
    auto it = objects.find(name);
    CompareObject(name, m, it == objects.end() ? kNone : it->second, problems, tally);
  }
  for (const auto& [name, m] : disks_) CompareDisk(name, m, disks[name], problems, tally);
  tally.verified++;
  if (problems.size() != before) return Status::Ok();
  // Adopt what the repository holds: the doubts are resolved.
  for (auto& [name, m] : objects_) {
    const auto& seen = objects[name];
    std::map<uint64_t, ContentRef> now;
    for (const auto& [v, h] : seen) now[v] = m.versions.count(v) ? m.versions[v] : m.doubt.content;
    m.versions = std::move(now);
    m.doubt = {};
  }
  for (auto& [name, m] : disks_) {
    m.image = disks[name];
    for (size_t b = 0; b < m.candidates.size(); b++)
      m.candidates[b] = {
          HashOf(std::span<const uint8_t>(m.image.data() + b * m.block_size, m.block_size))};
  }
  return Status::Ok();
}

// ---- persistence

Status Model::Save(const std::string& path) const {
  std::lock_guard lk(mu_);
  std::ostringstream out;
  for (const auto& [name, m] : objects_) {
    out << "O " << name << "\n";
    for (const auto& [v, r] : m.versions)
      out << "V " << v << " " << r.seed << " " << r.size << " " << Hex(r.hash) << "\n";
  }
  for (const auto& [name, d] : disks_) {
    out << "D " << name << " " << int(d.mode) << " " << d.block_size << " " << d.image.size()
        << "\n";
    std::ofstream img(path + ".disk-" + name, std::ios::binary | std::ios::trunc);
    img.write(reinterpret_cast<const char*>(d.image.data()), d.image.size());
    if (!img) return Status::IOError("writing " + path + ".disk-" + name);
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << out.str();
    if (!f) return Status::IOError("writing " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Status::IOError("renaming " + tmp);
  return Status::Ok();
}

Status Model::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(path + ": no model");
  Model& m = *this;
  objects_.clear();
  disks_.clear();
  std::string line, cur;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    std::string tag;
    l >> tag;
    if (tag == "O") {
      l >> cur;
      m.objects_[cur];
    } else if (tag == "V") {
      uint64_t v;
      ContentRef r;
      std::string h;
      l >> v >> r.seed >> r.size >> h;
      r.hash = FromHex(h);
      m.objects_[cur].versions[v] = r;
    } else if (tag == "D") {
      std::string name;
      int mode;
      uint32_t bs;
      uint64_t size;
      l >> name >> mode >> bs >> size;
      m.AddDisk(name, static_cast<VdiskMode>(mode), size, bs);
      auto& d = m.disks_[name];
      std::ifstream img(path + ".disk-" + name, std::ios::binary);
      img.read(reinterpret_cast<char*>(d.image.data()), size);
      for (size_t b = 0; b < d.candidates.size(); b++)
        d.candidates[b] = {HashOf(std::span<const uint8_t>(d.image.data() + b * bs, bs))};
    }
  }
  return Status::Ok();
}

Status Model::Replay(const std::string& journal, std::map<std::string, uint64_t>& ops) {
  static const std::map<std::string, std::string> kDone = {
      {"p", "put"}, {"r", "rm"}, {"f", "forget"}, {"W", "vdisk write"}, {"L", "vdisk flush"}};
  std::ifstream in(journal);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline: torn by the kill
    std::istringstream l(line);
    std::string tag, name;
    l >> tag >> name;
    if (kDone.count(tag)) ops[kDone.at(tag)]++;
    if (tag == "G") ops[line.substr(2)]++;
    if (tag == "P") {
      ContentRef c;
      std::string h;
      l >> c.seed >> c.size >> h;
      c.hash = FromHex(h);
      BeginPut(name, c);
    } else if (tag == "p") {
      uint64_t v;
      l >> v;
      EndPut(name, v);
    } else if (tag == "R") {
      std::string v;
      l >> v;
      BeginRemove(name, v == "*" ? std::nullopt : std::optional<uint64_t>(std::stoull(v)));
    } else if (tag == "r") {
      EndRemove(name);
    } else if (tag == "F") {
      uint64_t k;
      l >> k;
      BeginForget(name, k);
    } else if (tag == "f") {
      EndForget(name);
    } else if (tag == "W") {
      uint64_t off, len, seed;
      l >> off >> len >> seed;
      DiskWrite(name, off, len, seed);
    } else if (tag == "L") {
      EndFlush(name);
    }
  }
  return Status::Ok();
}

}  // namespace cairn::stress
