// Reader leases: commits a long-running reader (a mount) is serving.
//
// gc removes what no branch or tag reaches. A training job that mounted
// data@v1 must keep reading it even if someone deletes the tag meanwhile, so
// the mount records every commit it serves in a lease file,
// STORE/leases/<pid>.lease (one commit id in hex per line), and holds a
// shared flock on it for as long as it runs. gc treats the commits of every
// locked lease as roots and deletes lease files nobody holds (their reader
// has exited or crashed).
//
// Thread-safety: ReaderLease::Add is thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "store/ids.h"
#include "store/status.h"

namespace tusk {

class ReaderLease {
 public:
  static Result<std::unique_ptr<ReaderLease>> Acquire(const std::string& store_dir);
  ~ReaderLease();
  ReaderLease(const ReaderLease&) = delete;
  ReaderLease& operator=(const ReaderLease&) = delete;

  // Records `commit` (once); call before reading its objects.
  Status Add(const ObjectId& commit);

 private:
  ReaderLease(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
  std::mutex mu_;
  std::unordered_set<ObjectId, ObjectIdHash> added_;
};

// The commits of all leases still held; removes leases nobody holds.
Result<std::vector<ObjectId>> LeasedCommits(const std::string& store_dir);

}  // namespace tusk
