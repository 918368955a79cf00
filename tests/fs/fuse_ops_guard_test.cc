// Every FUSE op handler runs inside a guard (STYLE.md, "Exceptions stay at
// the edges"): an exception unwinding through libfuse's C frames is a bug,
// and a request left without its one reply hangs the caller. Throwing from
// inside a real op needs a fault the store cannot be made to produce on
// demand, so this reads the handlers' source: each `Op*` function's body
// must hand its work to Guard or GuardNoReply.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Handler {
  std::string name;
  std::string body;
};

// The top-level `void X(fuse_req_t req, ...) { ... }` definitions.
std::vector<Handler> Handlers(const std::string& source) {
  std::vector<Handler> out;
  std::regex head(R"(\nvoid ([A-Za-z]+)\(fuse_req_t[^)]*\) \{)");
  for (auto it = std::sregex_iterator(source.begin(), source.end(), head); it != std::sregex_iterator(); ++it) {
    size_t open = static_cast<size_t>(it->position(0) + it->length(0));
    int depth = 1;
    size_t i = open;
    for (; i < source.size() && depth > 0; i++) {
      if (source[i] == '{') depth++;
      if (source[i] == '}') depth--;
    }
    out.push_back({(*it)[1].str(), source.substr(open, i - open)});
  }
  return out;
}

TEST(FuseOpsGuard, EveryOpHandlerRunsInsideAGuard) {
  std::ifstream in(std::string(TUSK_SOURCE_DIR) + "/fs/fuse_ops.cc");
  ASSERT_TRUE(in) << "cannot read fs/fuse_ops.cc";
  std::stringstream text;
  text << in.rdbuf();
  auto handlers = Handlers(text.str());
  ASSERT_GT(handlers.size(), 20u) << "the handler pattern no longer matches fs/fuse_ops.cc";
  std::map<std::string, std::string> bodies;
  for (const auto& h : handlers) bodies[h.name] = h.body.substr(h.body.find_first_not_of(" \n"));
  auto starts = [](const std::string& body, const std::string& prefix) { return body.rfind(prefix, 0) == 0; };
  auto guarded = [&](const std::string& body) { return starts(body, "Guard(") || starts(body, "GuardNoReply("); };
  for (const auto& [name, body] : bodies) {
    if (name.rfind("Op", 0) != 0) continue;
    // Allowed besides a guard: only a reply (nothing can throw), or handing
    // the request to a helper whose own body is guarded.
    bool only_reply = starts(body, "fuse_reply_") && body.find(';') == body.rfind(';');
    std::string callee = body.substr(0, body.find('('));
    bool delegates = bodies.count(callee) && callee != name && guarded(bodies[callee]) && body.find(';') == body.rfind(';');
    EXPECT_TRUE(guarded(body) || only_reply || delegates)
        << name << " does not start with Guard(...) / GuardNoReply(...):\n" << body;
  }
}

}  // namespace
