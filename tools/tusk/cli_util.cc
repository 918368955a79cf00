#include "tools/tusk/cli_util.h"

#include "fs/control_socket.h"

#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>

namespace tusk::cli {

std::string Cli::StoreDir() const {
  if (!store_flag.empty()) return store_flag;
  if (const char* env = std::getenv("TUSK_STORE"); env && *env) return env;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/root") + "/.local/share/tusk";
}

Result<std::unique_ptr<Repository>> Cli::OpenStore(StoreAccess access) const {
  return Repository::Open(StoreDir(), access, Env::Default(), index_verified);
}

int Fail(const std::string& message) {
  std::cerr << "tusk: error: " << message << std::endl;
  return 1;
}
int Fail(const Status& status) { return Fail(status.message()); }
Status RemoveWorkspacesForDelete(Repository& repo, const std::string& dataset, const std::optional<std::string>& branch,
                                 bool force, const std::string& what) {
  // A workspace a mount holds: ask the mount. Clean, it is left to the mount
  // (harmless, see RemoveWorkspaces); with staged changes, or when the mount
  // does not answer, nothing is deleted, --force or not: its files are live.
  auto on_held = [&](const std::string& b) -> Status {
    std::string name = dataset + "@" + b;
    WsRequest request;
    request.op = WsRequest::Op::kStatus;
    auto reply = SendWorkspaceRequest(repo.dir(), dataset, b, request);
    if (!reply.ok() || !reply->status.ok())
      return Status::Busy("cannot delete " + what + ": workspace " + name +
                          " is held by another process (a mount serving it, or a commit in progress); unmount it first");
    if (reply->changes.empty()) return Status::Ok();
    std::string server = reply->server.empty() ? "another process" : reply->server;
    return Status::Busy("cannot delete " + what + ": changes are staged in workspace " + name + ", which is in use by " +
                        server + "; commit or reset them, or unmount it first");
  };
  Status st = RemoveWorkspaces(&repo, dataset, branch, force, on_held);
  if (st.code() == Status::Code::kConflict)
    return Status::Conflict("cannot delete " + what + ": " + st.message() +
                            "; commit them ('tusk commit'), drop them ('tusk reset'), or delete anyway with --force "
                            "(the staged changes are lost)");
  return st;
}

std::string Printable(std::string_view bytes) {
  std::string shown = EscapeForDisplay(bytes);  // C0, DEL, backslash, invalid UTF-8
  std::string out;
  out.reserve(shown.size());
  for (size_t i = 0; i < shown.size(); i++) {
    unsigned char c = static_cast<unsigned char>(shown[i]);
    unsigned char next = i + 1 < shown.size() ? static_cast<unsigned char>(shown[i + 1]) : 0;
    if (c == 0xc2 && next >= 0x80 && next < 0xa0) {  // a C1 control, valid UTF-8
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\xc2\\x%02x", next);
      out += buf;
      i++;
      continue;
    }
    out += static_cast<char>(c);
  }
  return out;
}

void Warn(const std::string& message) { std::cerr << "tusk: warning: " << message << std::endl; }

Result<uint64_t> ParseSize(const std::string& text) {
  auto bad = [&] { return Status::InvalidArgument("'" + text + "' is not a size (examples: 65536, 64K, 1M)"); };
  if (text.empty()) return bad();
  size_t pos = 0;
  uint64_t value = 0;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
    value = value * 10 + static_cast<uint64_t>(text[pos] - '0');
    if (value > (uint64_t{1} << 40)) return bad();
    pos++;
  }
  if (pos == 0) return bad();
  std::string suffix = text.substr(pos);
  if (suffix.empty() || suffix == "B") return value;
  if (suffix == "K" || suffix == "k" || suffix == "KiB") return value << 10;
  if (suffix == "M" || suffix == "MiB") return value << 20;
  if (suffix == "G" || suffix == "GiB") return value << 30;
  return bad();
}

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    u++;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

std::string FormatTime(int64_t unix_sec) {
  time_t t = static_cast<time_t>(unix_sec);
  struct tm tm;
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %z", &tm);
  return buf;
}

std::string Ratio(double r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fx", r);
  return buf;
}

void Json::Separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
}
Json& Json::BeginObject() {
  Separate();
  out_ += '{';
  first_.push_back(true);
  return *this;
}
Json& Json::EndObject() {
  out_ += '}';
  first_.pop_back();
  return *this;
}
Json& Json::BeginArray() {
  Separate();
  out_ += '[';
  first_.push_back(true);
  return *this;
}
Json& Json::EndArray() {
  out_ += ']';
  first_.pop_back();
  return *this;
}
Json& Json::Key(const std::string& key) {
  Separate();
  Quote(key);
  out_ += ':';
  after_key_ = true;
  return *this;
}
Json& Json::String(const std::string& value) {
  Separate();
  Quote(value);
  return *this;
}
void Json::Quote(const std::string& raw) {
  out_ += '"';
  for (size_t i = 0; i < raw.size();) {
    unsigned char c = static_cast<unsigned char>(raw[i]);
    if (c >= 0x80) {
      // Valid UTF-8 passes through; other bytes (a commit message written in
      // Latin-1, say) become \u00XX so the document stays valid JSON.
      size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
      if (n && i + n <= raw.size() && IsValidUtf8(std::string_view(raw).substr(i, n))) {
        out_.append(raw, i, n);
        i += n;
        continue;
      }
    }
    switch (c) {
      case '"': out_ += "\\\""; break;
      case '\\': out_ += "\\\\"; break;
      case '\n': out_ += "\\n"; break;
      case '\t': out_ += "\\t"; break;
      case '\r': out_ += "\\r"; break;
      default:
        if (c < 0x20 || c >= 0x80) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out_ += buf;
        } else {
          out_ += static_cast<char>(c);
        }
    }
    i++;
  }
  out_ += '"';
}
Json& Json::Number(uint64_t value) {
  Separate();
  out_ += std::to_string(value);
  return *this;
}
Json& Json::Signed(int64_t value) {
  Separate();
  out_ += std::to_string(value);
  return *this;
}
Json& Json::Double(double value) {
  Separate();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", value);
  out_ += buf;
  return *this;
}
Json& Json::Bool(bool value) {
  Separate();
  out_ += value ? "true" : "false";
  return *this;
}
Json& Json::Null() {
  Separate();
  out_ += "null";
  return *this;
}
Json& Json::Raw(const std::string& value) {
  Separate();
  out_ += value;
  return *this;
}
void Json::Print() const { std::cout << out_ << std::endl; }

static int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

ProgressDisplay::ProgressDisplay(Progress* progress, std::string verb, std::string unit)
    : progress_(progress), verb_(std::move(verb)), unit_(std::move(unit)), start_ns_(NowNs()) {
  if (!::isatty(STDERR_FILENO)) return;
  thread_ = std::thread([this] {
    while (!stop_) {
      for (int i = 0; i < 5 && !stop_; i++) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!stop_) Draw(false);
    }
  });
}

ProgressDisplay::~ProgressDisplay() {
  if (!thread_.joinable()) return;
  stop_ = true;
  thread_.join();
  Draw(true);
}

void ProgressDisplay::Draw(bool final) {
  double secs = static_cast<double>(NowNs() - start_ns_) / 1e9;
  uint64_t done = progress_->bytes_done, total = progress_->bytes_total;
  uint64_t items = progress_->items_done, items_total = progress_->items_total;
  double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  std::string line = verb_ + ": " + HumanBytes(done);
  if (total) line += " / " + HumanBytes(total) + " (" + std::to_string(done * 100 / total) + "%)";
  line += ", " + std::to_string(items) + (items_total ? "/" + std::to_string(items_total) : "") + " " + unit_;
  line += ", " + HumanBytes(static_cast<uint64_t>(rate)) + "/s";
  if (total && rate > 0 && done < total && !final)
    line += ", ETA " + std::to_string(static_cast<uint64_t>(static_cast<double>(total - done) / rate) + 1) + "s";
  std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  std::fflush(stderr);
}

std::string DefaultAuthor() {
  for (const char* var : {"TUSK_AUTHOR", "USER"})
    if (const char* v = std::getenv(var); v && *v) return v;
  if (const passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_name) return pw->pw_name;
  return "unknown";
}

Result<std::vector<std::pair<std::string, std::string>>> ParseMetadataFlags(const std::vector<std::string>& flags) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& kv : flags) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return Status::InvalidArgument("--meta takes KEY=VALUE, got '" + kv + "'");
    out.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return out;
}

Result<std::vector<Provenance>> ResolveFromFlags(Repository& repo, const std::vector<std::string>& flags) {
  std::vector<Provenance> out;
  for (const auto& ref : flags) {
    auto parsed = ParseRef(ref, true);
    if (!parsed.ok()) return parsed.status().Annotate("--from");
    auto id = repo.Resolve(*parsed);
    if (!id.ok()) return id.status().Annotate("--from");
    out.push_back({parsed->dataset, *id});
  }
  return out;
}

Result<std::vector<std::string>> ParseKeyColumns(const std::string& flag) {
  std::vector<std::string> cols;
  size_t start = 0;
  for (;;) {
    size_t comma = flag.find(',', start);
    std::string col = flag.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (col.empty()) return Status::InvalidArgument("--key has an empty column name: '" + flag + "'");
    cols.push_back(std::move(col));
    if (comma == std::string::npos) return cols;
    start = comma + 1;
  }
}

}  // namespace tusk::cli
