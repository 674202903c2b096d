// RepositoryImpl: virtual disks, and the system store that holds the templates user stores'
// vdisks may be built on (opened read-only next to a user store when first needed).
#include "repo/repository_impl.h"

namespace cairn {

Result<std::unique_ptr<RepositoryImpl>> RepositoryImpl::OpenSibling(const std::string& user) {
  CAIRN_ASSIGN_OR_RETURN(auto store,
                         ResolveStore(*storage_, cfg_, user, ring_ ? &*ring_ : nullptr));
  auto repo = std::make_unique<RepositoryImpl>(storage_, cfg_, std::move(store));
  OpenOptions o;
  o.writable = false;
  o.threads = threads_;
  CAIRN_RETURN_IF_ERROR(repo->OpenAll(o, ring_ ? &*ring_ : nullptr, TestHooks{}, cache_));
  return repo;
}

Result<VdiskStore*> RepositoryImpl::SystemVdisks() {
  if (store_.key_id == "system") return vdisks_.get();
  std::lock_guard lk(system_mu_);
  if (!system_) {
    auto sys = OpenSibling("");
    if (!sys.ok()) return sys.status().WithContext("opening the system store for a template");
    system_ = std::move(sys.value());
  }
  return system_->vdisks_.get();
}

Result<std::vector<std::string>> RepositoryImpl::UserDependents(const VdiskId& id) {
  std::vector<std::string> out;
  CAIRN_ASSIGN_OR_RETURN(auto reg,
                         UserRegistry::Load(*storage_, ring_ ? &*ring_ : nullptr, cfg_.version));
  for (const auto& u : reg.users) {
    CAIRN_ASSIGN_OR_RETURN(auto repo, OpenSibling(u.name));
    CAIRN_ASSIGN_OR_RETURN(auto names, repo->vdisks_->Dependents(id, true));
    for (const auto& n : names) out.push_back("'" + n + "' (store of user " + u.name + ")");
  }
  return out;
}

Status RepositoryImpl::CreateVdisk(const std::string& name, const VdiskCreateOptions& o) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  return vdisks_->Create(name, o);
}

Result<VdiskInfo> RepositoryImpl::ImportVdisk(const std::string& name, ByteSource& image,
                                              uint32_t block_size, bool as_template,
                                              const ProgressFn& progress) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  return vdisks_->Import(name, image, block_size, as_template, progress);
}

Result<std::unique_ptr<Vdisk>> RepositoryImpl::OpenVdisk(const std::string& name, bool writable) {
  if (writable) CAIRN_RETURN_IF_ERROR(RequireWritable());
  CAIRN_ASSIGN_OR_RETURN(auto v, vdisks_->Open(name, writable));
  return std::unique_ptr<Vdisk>(std::move(v));
}

Result<std::vector<VdiskInfo>> RepositoryImpl::ListVdisks() { return vdisks_->List(); }

Result<VdiskInfo> RepositoryImpl::VdiskStat(const std::string& name, bool stored_bytes) {
  return vdisks_->Info(name, stored_bytes);
}

Status RepositoryImpl::RemoveVdisk(const std::string& name) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  return vdisks_->Remove(name);
}

Status RepositoryImpl::ResizeVdisk(const std::string& name, uint64_t size) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  return vdisks_->Resize(name, size);
}

Status RepositoryImpl::SnapshotVdisk(const std::string& name, const std::string& snapshot) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  return vdisks_->Snapshot(name, snapshot);
}

Status RepositoryImpl::CloneVdisk(const std::string& tmpl, bool in_system,
                                  const std::string& name) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  return vdisks_->Clone(tmpl, in_system, name);
}

Status RepositoryImpl::FlattenVdisk(const std::string& name, const ProgressFn& progress) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  return vdisks_->Flatten(name, progress);
}

}  // namespace cairn
