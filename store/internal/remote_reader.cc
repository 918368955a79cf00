#include "store/internal/remote_reader.h"

#include <algorithm>
#include <map>

namespace tusk {

RemoteReader::RemoteReader(FetchSpan fetch, unsigned threads) : fetch_(std::move(fetch)) {
  for (unsigned i = 0; i < std::max(1u, threads); i++) threads_.emplace_back([this] { Loop(); });
}

RemoteReader::~RemoteReader() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    for (Job& job : queue_)
      for (auto& f : job.flights) {
        f->done = true;
        f->status = Status::Busy("the store is closing");
      }
    queue_.clear();
  }
  work_cv_.notify_all();
  done_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

std::vector<RemoteReader::Span> RemoteReader::MakeSpans(std::vector<std::pair<ObjectId, ObjectLocation>> records) {
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second.pack, a.second.offset) < std::tie(b.second.pack, b.second.offset);
  });
  std::vector<Span> spans;
  uint64_t start = 0, end = 0;
  for (auto& r : records) {
    if (!spans.empty() && spans.back().back().first == r.first) continue;  // asked twice
    const ObjectLocation& loc = r.second;
    uint64_t r_end = loc.offset + RecordExtent(loc);
    bool joins = !spans.empty() && spans.back().back().second.pack == loc.pack && loc.offset >= end &&
                 loc.offset - end <= kMaxGap && r_end - start <= kMaxSpan;
    if (!joins) {
      spans.emplace_back();
      start = loc.offset;
    }
    spans.back().push_back(std::move(r));
    end = r_end;
  }
  return spans;
}

Status RemoteReader::Fetch(std::vector<std::pair<ObjectId, ObjectLocation>> wanted, bool wait) {
  std::vector<std::shared_ptr<Flight>> waiting;
  std::vector<std::pair<ObjectId, ObjectLocation>> fresh;
  {
    std::lock_guard lock(mu_);
    for (auto& w : wanted) {
      auto it = in_flight_.find(w.first);
      if (it != in_flight_.end()) {
        if (wait) waiting.push_back(it->second);
        continue;
      }
      fresh.push_back(std::move(w));
    }
  }
  std::vector<Span> spans = MakeSpans(std::move(fresh));
  {
    std::unique_lock lock(mu_);
    for (Span& span : spans) {
      if (stop_) return Status::Busy("the store is closing");
      if (!wait && queue_.size() >= kMaxQueued) break;
      // A waiting caller queues everything, at the pace the pool takes it.
      done_cv_.wait(lock, [&] { return stop_ || queue_.size() < kMaxQueued; });
      Job job;
      job.read_ahead = !wait;
      for (const auto& record : span) {
        auto [it, inserted] = in_flight_.emplace(record.first, nullptr);
        if (!inserted) {  // claimed by another caller since we looked
          if (wait) waiting.push_back(it->second);
          continue;
        }
        it->second = std::make_shared<Flight>();
        job.span.push_back(record);
        job.flights.push_back(it->second);
        if (wait) waiting.push_back(it->second);
      }
      if (job.span.empty()) continue;
      queue_.push_back(std::move(job));
      work_cv_.notify_one();
    }
    if (!wait) return Status::Ok();
    done_cv_.wait(lock, [&] {
      return std::all_of(waiting.begin(), waiting.end(), [](const auto& f) { return f->done; });
    });
  }
  for (const auto& f : waiting)
    if (!f->status.ok()) return f->status;
  return Status::Ok();
}

bool RemoteReader::WaitFor(const ObjectId& id) {
  std::unique_lock lock(mu_);
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return false;
  std::shared_ptr<Flight> flight = it->second;
  done_cv_.wait(lock, [&] { return flight->done; });
  return true;
}

void RemoteReader::Land(const ObjectId& id, std::string plaintext) {
  std::lock_guard lock(landed_mu_);
  uint64_t size = plaintext.size();
  if (!landed_.emplace(id, std::move(plaintext)).second) return;
  landed_order_.push_back(id);
  landed_bytes_ += size;
  while (landed_bytes_ > kMaxLanded && !landed_order_.empty()) {
    auto it = landed_.find(landed_order_.front());
    landed_order_.pop_front();
    if (it == landed_.end()) continue;  // taken already
    landed_bytes_ -= it->second.size();
    landed_.erase(it);
  }
}

std::optional<std::string> RemoteReader::Take(const ObjectId& id) {
  std::lock_guard lock(landed_mu_);
  auto it = landed_.find(id);
  if (it == landed_.end()) return std::nullopt;
  std::string out = std::move(it->second);
  landed_bytes_ -= out.size();
  landed_.erase(it);
  if (landed_.empty()) landed_order_.clear();
  return out;
}

void RemoteReader::Loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    done_cv_.notify_all();  // room in the queue
    Status st = fetch_(job.span.front().second.pack, job.span, job.read_ahead);
    {
      std::lock_guard lock(mu_);
      for (size_t i = 0; i < job.span.size(); i++) {
        job.flights[i]->done = true;
        job.flights[i]->status = st;
        in_flight_.erase(job.span[i].first);
      }
    }
    done_cv_.notify_all();
  }
}

}  // namespace tusk
