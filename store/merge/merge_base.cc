// The merge base: git's "paint down to common" walk. Commits are visited
// newest first; each carries the sides (a, b) it is reachable from. A commit
// reached from both is a common ancestor, and everything below it is
// *stale*: an older common ancestor of the same line. The walk ends when
// every commit still queued is stale, so it reads only the commits between
// the two heads and their nearest common ancestors, not the whole history.
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "store/merge/merge.h"

namespace tusk {
namespace {

constexpr uint8_t kFromA = 1, kFromB = 2, kStale = 4;

struct Queued {
  int64_t time;
  uint64_t order;  // insertion order breaks ties, so the walk is deterministic
  ObjectId id;
  bool operator<(const Queued& other) const {
    if (time != other.time) return time < other.time;  // newest on top
    return order > other.order;
  }
};

class Walk {
 public:
  explicit Walk(Repository& repo) : repo_(repo) {}

  Result<std::vector<std::pair<int64_t, ObjectId>>> CommonAncestors(const ObjectId& a, const ObjectId& b) {
    TUSK_RETURN_IF_ERROR(Paint(a, kFromA));
    TUSK_RETURN_IF_ERROR(Paint(b, kFromB));
    std::vector<std::pair<int64_t, ObjectId>> found;
    while (!queue_.empty() && non_stale_ > 0) {
      Queued q = queue_.top();
      queue_.pop();
      queued_.erase(q.id);
      uint8_t f = flags_[q.id];
      if (!(f & kStale)) non_stale_--;
      uint8_t down = f & (kFromA | kFromB | kStale);
      if ((f & (kFromA | kFromB)) == (kFromA | kFromB) && !(f & kStale)) {
        found.emplace_back(q.time, q.id);
        down |= kStale;
      }
      std::vector<ObjectId> parents = parents_[q.id];
      for (const auto& p : parents) TUSK_RETURN_IF_ERROR(Paint(p, down));
    }
    return found;
  }

 private:
  // Adds `bits` to a commit's flags and queues it when they grew and it is
  // not queued already (a commit is processed with the union of the flags
  // that reached it before its turn; one repainted after its turn, which
  // only clock skew between commits allows, is queued again).
  Status Paint(const ObjectId& id, uint8_t bits) {
    auto [it, fresh] = flags_.try_emplace(id, 0);
    uint8_t before = it->second;
    uint8_t after = before | bits;
    if (!fresh && after == before) return Status::Ok();
    it->second = after;
    bool waiting = queued_.count(id) > 0;
    if (waiting) {
      if (!(before & kStale) && (after & kStale)) non_stale_--;
      return Status::Ok();
    }
    if (fresh) {
      TUSK_ASSIGN_OR_RETURN(Commit c, repo_.ReadCommit(id));
      times_[id] = c.time_sec;
      parents_[id] = std::move(c.parents);
    }
    queue_.push({times_[id], order_++, id});
    queued_.insert(id);
    if (!(after & kStale)) non_stale_++;
    return Status::Ok();
  }

  Repository& repo_;
  std::unordered_map<ObjectId, uint8_t, ObjectIdHash> flags_;
  std::unordered_set<ObjectId, ObjectIdHash> queued_;
  std::unordered_map<ObjectId, int64_t, ObjectIdHash> times_;
  std::unordered_map<ObjectId, std::vector<ObjectId>, ObjectIdHash> parents_;
  std::priority_queue<Queued> queue_;
  uint64_t order_ = 0;
  int64_t non_stale_ = 0;
};

}  // namespace

Result<std::optional<ObjectId>> FindMergeBase(Repository& repo, const ObjectId& a, const ObjectId& b) {
  if (a == b) return std::optional<ObjectId>(a);
  Walk walk(repo);
  TUSK_ASSIGN_OR_RETURN(auto found, walk.CommonAncestors(a, b));
  if (found.empty()) return std::optional<ObjectId>();
  // Found newest first; of several (criss-cross), the newest.
  return std::optional<ObjectId>(found.front().second);
}

Result<bool> IsAncestor(Repository& repo, const ObjectId& ancestor, const ObjectId& descendant) {
  if (ancestor == descendant) return true;
  TUSK_ASSIGN_OR_RETURN(auto base, FindMergeBase(repo, ancestor, descendant));
  return base && *base == ancestor;
}

}  // namespace tusk
