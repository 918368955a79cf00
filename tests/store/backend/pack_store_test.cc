// Specification of the pack seam (store/backend/pack_store.h), one contract
// for every implementation: PackStoreContract runs each test against
// LocalPackStore (a temporary directory through Env::Default()) and against
// the S3 store (store/backend/s3/s3_pack_store.h, a fresh bucket per test).
// Where they differ on purpose (a pack whose sink went without Finish is
// listed on disk, not on S3), the Backend says so and the test says which.
//
// Then what only the S3 store has: its key layout, keys under packs/ that
// are not packs, multipart uploads, and servers that fail or are gone.
//
// The S3 tests need a server: they run when
//   TUSK_TEST_S3_ENDPOINT (e.g. http://127.0.0.1:7480),
//   AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
// (and optionally TUSK_TEST_S3_REGION) are set, and are skipped otherwise
// (tests/s3/rgw.sh starts one). The tests of dead servers need none.

#include "store/backend/pack_store.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/backend/env.h"
#include "store/backend/s3/curl_transport.h"
#include "store/backend/s3/http.h"
#include "store/backend/s3/s3_client.h"
#include "store/backend/s3/s3_pack_store.h"
#include "tests/store/backend/s3_test_util.h"
#include "tests/store/test_util.h"

namespace tusk {
namespace {

using Code = Status::Code;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using test_util::FastFailingOptions;
using test_util::RandomBytes;
using test_util::S3Server;
using test_util::S3ServerFromEnvironment;
using test_util::ScratchBucket;
using test_util::TempDir;

constexpr size_t kPartSize = 5 << 20;  // the S3 minimum, so that tests reach multipart uploads soon

// ---------------------------------------------------------------- helpers

// Writes `bytes` as pack `id` in writes of `write_size` bytes (the last
// shorter) and finishes it.
Status WritePack(PackStore& store, PackId id, std::string_view bytes, size_t write_size = 100000) {
  TUSK_ASSIGN_OR_RETURN(std::unique_ptr<PackSink> sink, store.Create(id));
  for (size_t at = 0; at < bytes.size(); at += write_size) {
    TUSK_RETURN_IF_ERROR(sink->Write(at, bytes.substr(at, write_size)));
  }
  return sink->Finish();
}

Result<std::string> ReadAt(const RandomAccessFile& file, uint64_t offset, size_t len) {
  std::string out(len, '\0');
  TUSK_RETURN_IF_ERROR(file.Read(offset, len, out.data()));
  return out;
}

std::set<PackId> Listed(PackStore& store) {
  Result<std::vector<PackId>> ids = store.List();
  EXPECT_TRUE(ids.ok()) << ids.status().ToString();
  return ids.ok() ? std::set<PackId>(ids->begin(), ids->end()) : std::set<PackId>();
}

std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_directory()) files.push_back(it->path().string());
  }
  return files;
}

bool Mentions(const Status& status, const std::string& what) {
  return status.message().find(what) != std::string::npos;
}

// ---------------------------------------------------------------- the implementations

// One implementation under test, and what differs between them.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual PackStore& store() = 0;
  // Another store over the same packs that knows nothing of them yet, as
  // another process would have.
  virtual std::unique_ptr<PackStore> OpenAgain() = 0;
  // pack_store.h lists "every pack, finished or not"; S3 has no unfinished ones.
  virtual bool ListsUnfinishedPacks() const = 0;
  // Files that sinks left in their scratch space.
  virtual std::vector<std::string> ScratchFiles() const = 0;
};

class LocalBackend final : public Backend {
 public:
  // The packs directory exists, as a repository's creation leaves it.
  LocalBackend() : store_(NewLocalPackStore(dir_.Sub("packs"), Env::Default())) {
    std::filesystem::create_directory(dir_.Sub("packs"));
  }
  PackStore& store() override { return *store_; }
  std::unique_ptr<PackStore> OpenAgain() override { return NewLocalPackStore(dir_.Sub("packs"), Env::Default()); }
  bool ListsUnfinishedPacks() const override { return true; }
  std::vector<std::string> ScratchFiles() const override { return {}; }  // writes in place

 private:
  TempDir dir_;
  std::unique_ptr<PackStore> store_;
};

class S3Backend final : public Backend {
 public:
  static constexpr char kPrefix[] = "repo/";

  static Result<std::unique_ptr<S3Backend>> Create(const S3Server& server) {
    TUSK_ASSIGN_OR_RETURN(std::unique_ptr<ScratchBucket> bucket, ScratchBucket::Create(server));
    return std::unique_ptr<S3Backend>(new S3Backend(std::move(bucket)));
  }
  PackStore& store() override { return *store_; }
  std::unique_ptr<PackStore> OpenAgain() override { return NewStore(kPrefix); }
  bool ListsUnfinishedPacks() const override { return false; }
  std::vector<std::string> ScratchFiles() const override { return FilesUnder(scratch_dir()); }

  std::unique_ptr<PackStore> NewStore(const std::string& prefix) {
    S3PackStoreOptions options;
    options.scratch_dir = scratch_dir();
    options.part_size = kPartSize;
    options.parts_in_flight = 4;
    return NewS3PackStore(client(), prefix, options);
  }
  s3::Client& client_ref() { return *bucket_->client(); }
  const std::shared_ptr<s3::Client>& client() const { return bucket_->client(); }
  // Not there before the first Create: the store makes it.
  std::string scratch_dir() const { return scratch_root_.Sub("spool/packs"); }

 private:
  explicit S3Backend(std::unique_ptr<ScratchBucket> bucket) : bucket_(std::move(bucket)), store_(NewStore(kPrefix)) {}

  TempDir scratch_root_;
  std::unique_ptr<ScratchBucket> bucket_;
  std::unique_ptr<PackStore> store_;
};

enum class Impl { kLocal, kS3 };

void PrintTo(Impl impl, std::ostream* os) { *os << (impl == Impl::kLocal ? "Local" : "S3"); }

std::string ImplName(const ::testing::TestParamInfo<Impl>& info) { return info.param == Impl::kLocal ? "Local" : "S3"; }

// ---------------------------------------------------------------- the contract

class PackStoreContract : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    if (GetParam() == Impl::kLocal) {
      backend_ = std::make_unique<LocalBackend>();
      return;
    }
    std::string why_not;
    std::optional<S3Server> server = S3ServerFromEnvironment(&why_not);
    if (!server) GTEST_SKIP() << why_not;
    Result<std::unique_ptr<S3Backend>> s3 = S3Backend::Create(*server);
    ASSERT_TRUE(s3.ok()) << s3.status().ToString();
    backend_ = std::move(s3).value();
  }
  PackStore& store() { return backend_->store(); }

  std::unique_ptr<Backend> backend_;
};

TEST_P(PackStoreContract, APackWrittenInSeveralWritesReadsBackByteForByteAtAnyOffsetAndLength) {
  std::string bytes = RandomBytes((1 << 20) + 4321, 1);
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PackSink> sink, store().Create(7));
  size_t at = 0;
  for (size_t len : {size_t{1}, size_t{4095}, size_t{100000}, size_t{0}, size_t{333333}}) {
    TUSK_ASSERT_OK(sink->Write(at, std::string_view(bytes).substr(at, len)));
    at += len;
  }
  TUSK_ASSERT_OK(sink->Sync());
  TUSK_ASSERT_OK(sink->Write(at, std::string_view(bytes).substr(at)));
  TUSK_ASSERT_OK(sink->Finish());

  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<RandomAccessFile> file, store().Open(7));
  EXPECT_EQ(file->size(), bytes.size());
  EXPECT_EQ(file->path(), store().Describe(7));
  TUSK_ASSERT_OK_AND_ASSIGN(std::string whole, ReadAt(*file, 0, bytes.size()));
  EXPECT_TRUE(whole == bytes);

  std::mt19937_64 rng(2);
  for (int i = 0; i < 100; i++) {
    uint64_t offset = rng() % bytes.size();
    size_t len = static_cast<size_t>(rng() % std::min<uint64_t>(bytes.size() - offset + 1, 200000));
    TUSK_ASSERT_OK_AND_ASSIGN(std::string got, ReadAt(*file, offset, len));
    ASSERT_TRUE(got == bytes.substr(offset, len)) << len << " bytes at " << offset;
  }
  TUSK_ASSERT_OK_AND_ASSIGN(std::string last, ReadAt(*file, bytes.size() - 1, 1));
  EXPECT_EQ(last, bytes.substr(bytes.size() - 1));
  TUSK_ASSERT_OK_AND_ASSIGN(std::string nothing, ReadAt(*file, 1000, 0));
  EXPECT_EQ(nothing, "");

  std::string a(100, '\0'), b(5000, '\0');
  TUSK_ASSERT_OK(file->Read2(12345, a.data(), a.size(), b.data(), b.size()));
  EXPECT_TRUE(a + b == bytes.substr(12345, 5100));
}

TEST_P(PackStoreContract, ReadsPastTheEndAreCorruption) {
  std::string bytes = RandomBytes(10000, 3);
  TUSK_ASSERT_OK(WritePack(store(), 1, bytes));
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<RandomAccessFile> file, store().Open(1));
  char buf[64];
  EXPECT_EQ(file->Read(bytes.size() - 10, 11, buf).code(), Code::kCorruption) << "ends one byte short";
  EXPECT_EQ(file->Read(bytes.size(), 1, buf).code(), Code::kCorruption) << "starts at the end";
  EXPECT_EQ(file->Read(uint64_t{1} << 40, 1, buf).code(), Code::kCorruption) << "starts far beyond";
  std::string tail(20, '\0');
  EXPECT_EQ(file->Read2(bytes.size() - 30, buf, 15, tail.data(), tail.size()).code(), Code::kCorruption);
}

TEST_P(PackStoreContract, CreatingAPackThatExistsIsAlreadyExists) {
  TUSK_ASSERT_OK(WritePack(store(), 42, "finished"));
  EXPECT_EQ(store().Create(42).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(backend_->OpenAgain()->Create(42).status().code(), Code::kAlreadyExists) << "found on the server";

  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PackSink> open_sink, store().Create(43));
  EXPECT_EQ(store().Create(43).status().code(), Code::kAlreadyExists) << "while a sink writes it";
  TUSK_ASSERT_OK(open_sink->Write(0, "x"));
  TUSK_ASSERT_OK(open_sink->Finish());
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<RandomAccessFile> file, store().Open(43));
  EXPECT_EQ(file->size(), 1u);
}

TEST_P(PackStoreContract, AnAbsentPackIsNotFoundToOpenSizeAndRemove) {
  EXPECT_EQ(store().Open(5).status().code(), Code::kNotFound);
  EXPECT_EQ(store().Size(5).status().code(), Code::kNotFound);
  EXPECT_EQ(store().Remove(5).code(), Code::kNotFound);
  EXPECT_TRUE(Listed(store()).empty());
}

TEST_P(PackStoreContract, ListShowsFinishedPacksAndRemoveMakesOneDisappear) {
  std::set<PackId> ids = {0, 1, 0xab, 0xfedcba9876543210};
  for (PackId id : ids) TUSK_ASSERT_OK(WritePack(store(), id, RandomBytes(1000 + id % 7, id)));
  EXPECT_EQ(Listed(store()), ids);
  EXPECT_EQ(Listed(*backend_->OpenAgain()), ids);

  TUSK_ASSERT_OK(store().Remove(0xab));
  ids.erase(0xab);
  EXPECT_EQ(Listed(store()), ids);
  EXPECT_EQ(store().Open(0xab).status().code(), Code::kNotFound);
  EXPECT_EQ(store().Size(0xab).status().code(), Code::kNotFound);
  EXPECT_EQ(store().Remove(0xab).code(), Code::kNotFound) << "removed already";
  TUSK_EXPECT_OK(WritePack(store(), 0xab, "again"));  // a removed id can be used again
}

TEST_P(PackStoreContract, SizeIsWhatWasWrittenForThisStoreAndAnother) {
  TUSK_ASSERT_OK(WritePack(store(), 1, RandomBytes(123457, 4)));
  TUSK_ASSERT_OK(WritePack(store(), 2, ""));
  std::unique_ptr<PackStore> other = backend_->OpenAgain();
  for (PackStore* s : {&store(), other.get()}) {
    EXPECT_EQ(s->Size(1).value(), 123457u);
    EXPECT_EQ(s->Size(2).value(), 0u) << "an empty pack is a pack";
  }
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<RandomAccessFile> file, other->Open(1));
  EXPECT_EQ(file->size(), 123457u);
}

TEST_P(PackStoreContract, AFortyMiBPackRoundTrips) {
  std::string bytes = RandomBytes(40 << 20, 5);
  TUSK_ASSERT_OK(WritePack(store(), 40, bytes, 1 << 20));
  std::unique_ptr<PackStore> other = backend_->OpenAgain();
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<RandomAccessFile> file, other->Open(40));
  ASSERT_EQ(file->size(), bytes.size());
  constexpr size_t kSlice = 4 << 20;
  for (size_t at = 0; at < bytes.size(); at += kSlice) {
    TUSK_ASSERT_OK_AND_ASSIGN(std::string got, ReadAt(*file, at, kSlice));
    ASSERT_TRUE(got == bytes.substr(at, kSlice)) << "slice at " << at;
  }
  for (size_t boundary = kPartSize; boundary < bytes.size(); boundary += kPartSize) {
    TUSK_ASSERT_OK_AND_ASSIGN(std::string across, ReadAt(*file, boundary - 3, 6));
    EXPECT_EQ(across, bytes.substr(boundary - 3, 6)) << "across " << boundary;
  }
}

TEST_P(PackStoreContract, EightThreadsReadingRandomRangesOfOnePackAllGetTheRightBytes) {
  std::string bytes = RandomBytes(6 << 20, 6);
  TUSK_ASSERT_OK(WritePack(store(), 8, bytes, 1 << 20));
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<RandomAccessFile> file, store().Open(8));
  std::atomic<int> wrong{0}, failed{0};
  {
    std::vector<std::jthread> readers;
    for (int t = 0; t < 8; t++) {
      readers.emplace_back([&, t] {
        std::mt19937_64 rng(100 + t);
        std::string buf;
        for (int i = 0; i < 60; i++) {
          uint64_t offset = rng() % bytes.size();
          size_t len = 1 + static_cast<size_t>(rng() % std::min<uint64_t>(bytes.size() - offset, 64 << 10));
          buf.resize(len);
          if (!file->Read(offset, len, buf.data()).ok()) {
            failed++;
          } else if (std::memcmp(buf.data(), bytes.data() + offset, len) != 0) {
            wrong++;
          }
        }
      });
    }
  }
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
}

TEST_P(PackStoreContract, ASinkDestroyedWithoutFinishLeavesNoTemporaryFileAndOnS3NoPack) {
  {
    TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PackSink> sink, store().Create(9));
    TUSK_ASSERT_OK(sink->Write(0, RandomBytes(300000, 7)));
    TUSK_ASSERT_OK(sink->Sync());
  }
  EXPECT_EQ(backend_->ScratchFiles(), std::vector<std::string>());
  if (backend_->ListsUnfinishedPacks()) {
    EXPECT_EQ(Listed(store()), std::set<PackId>{9}) << "a writer that died leaves an unfinished pack";
  } else {
    EXPECT_TRUE(Listed(store()).empty());
    EXPECT_EQ(store().Open(9).status().code(), Code::kNotFound);
    TUSK_EXPECT_OK(WritePack(store(), 9, "written whole this time"));  // the id is free again
  }
}

INSTANTIATE_TEST_SUITE_P(Local, PackStoreContract, ::testing::Values(Impl::kLocal), ImplName);
INSTANTIATE_TEST_SUITE_P(S3, PackStoreContract, ::testing::Values(Impl::kS3), ImplName);

// ---------------------------------------------------------------- S3 only, on a real server

class S3PackStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why_not;
    server_ = S3ServerFromEnvironment(&why_not);
    if (!server_) GTEST_SKIP() << why_not;
    Result<std::unique_ptr<S3Backend>> s3 = S3Backend::Create(*server_);
    ASSERT_TRUE(s3.ok()) << s3.status().ToString();
    s3_ = std::move(s3).value();
  }
  PackStore& store() { return s3_->store(); }
  s3::Client& client() { return s3_->client_ref(); }
  std::vector<std::string> AllKeys() {
    std::vector<std::string> keys;
    Result<std::vector<s3::ObjectInfo>> objects = client().List("");
    EXPECT_TRUE(objects.ok()) << objects.status().ToString();
    if (objects.ok()) {
      for (const s3::ObjectInfo& object : *objects) keys.push_back(object.key);
    }
    return keys;
  }

  std::optional<S3Server> server_;
  std::unique_ptr<S3Backend> s3_;
};

TEST_F(S3PackStoreTest, EachPackIsTheObjectPrefixPacksNameDotPack) {
  TUSK_ASSERT_OK(WritePack(store(), 1, "one"));
  TUSK_ASSERT_OK(WritePack(store(), 0xfedcba9876543210, "two"));
  std::unique_ptr<PackStore> whole_bucket = s3_->NewStore("");
  TUSK_ASSERT_OK(WritePack(*whole_bucket, 3, "three"));
  std::unique_ptr<PackStore> no_final_slash = s3_->NewStore("a/b");
  TUSK_ASSERT_OK(WritePack(*no_final_slash, 4, "four"));

  EXPECT_EQ(AllKeys(),
            (std::vector<std::string>{"a/b/packs/0000000000000004.pack", "packs/0000000000000003.pack",
                                      "repo/packs/0000000000000001.pack", "repo/packs/fedcba9876543210.pack"}));
  std::string bucket = client().bucket();
  EXPECT_EQ(store().Describe(1), "s3://" + bucket + "/repo/packs/0000000000000001.pack");
  EXPECT_EQ(whole_bucket->Describe(3), "s3://" + bucket + "/packs/0000000000000003.pack");
  EXPECT_EQ(client().Get("repo/packs/fedcba9876543210.pack").value(), "two");
  EXPECT_EQ(Listed(*whole_bucket), std::set<PackId>{3}) << "other prefixes are other stores";
}

TEST_F(S3PackStoreTest, KeysUnderPacksThatAreNotPackNamesAreNotPacks) {
  TUSK_ASSERT_OK(WritePack(store(), 1, "a pack"));
  for (const char* foreign :
       {"repo/packs/README", "repo/packs/00/0000000000000002.pack", "repo/packs/0000000000000003.pack.tmp",
        "repo/packs/ABCDEF0123456789.pack", "repo/packs/000000000000004.pack", "repo/other/0000000000000005.pack",
        "repo/packs0000000000000006.pack"}) {
    ASSERT_TRUE(client().Put(foreign, "not a pack").ok()) << foreign;
  }
  EXPECT_EQ(Listed(store()), std::set<PackId>{1});
  TUSK_ASSERT_OK(store().Remove(1));
  EXPECT_EQ(AllKeys().size(), 7u) << "Remove touches its pack only";
}

TEST_F(S3PackStoreTest, APackOfOnePartIsOnePutAndALargerOneAMultipartUpload) {
  TUSK_ASSERT_OK(WritePack(store(), 1, RandomBytes(kPartSize, 8), 1 << 20));
  TUSK_ASSERT_OK(WritePack(store(), 2, RandomBytes(kPartSize + 1, 9), 1 << 20));
  EXPECT_EQ(client().Head("repo/packs/0000000000000001.pack")->etag.find('-'), std::string::npos);
  EXPECT_TRUE(client().Head("repo/packs/0000000000000002.pack")->etag.ends_with("-2"));
}

TEST_F(S3PackStoreTest, FinishingAPackAnotherWriterCreatedMeanwhileIsAlreadyExists) {
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PackSink> late, store().Create(11));
  TUSK_ASSERT_OK(late->Write(0, "the late writer"));
  TUSK_ASSERT_OK(WritePack(*s3_->OpenAgain(), 11, "the first writer"));  // another process
  Status finished = late->Finish();
  EXPECT_EQ(finished.code(), Code::kAlreadyExists);
  EXPECT_TRUE(Mentions(finished, PackName(11) + ".pack")) << finished.ToString();
  EXPECT_EQ(late->Finish().code(), Code::kAlreadyExists) << "a broken writer stays broken";
  EXPECT_EQ(client().Get("repo/packs/000000000000000b.pack").value(), "the first writer");
}

TEST_F(S3PackStoreTest, WritesMustAppend) {
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PackSink> sink, store().Create(12));
  TUSK_ASSERT_OK(sink->Write(0, "abc"));
  EXPECT_EQ(sink->Write(10, "gap").code(), Code::kInvalidArgument);
  EXPECT_EQ(sink->Write(1, "overlap").code(), Code::kInvalidArgument);
  TUSK_ASSERT_OK(sink->Write(3, "def"));
  TUSK_ASSERT_OK(sink->Finish());
  EXPECT_EQ(client().Get("repo/packs/000000000000000c.pack").value(), "abcdef");
  EXPECT_EQ(sink->Write(6, "more").code(), Code::kInvalidArgument) << "finished";
}

TEST_F(S3PackStoreTest, SinksSpoolToNamelessFilesInAScratchDirectoryOnlyTheUserCanEnter) {
  ASSERT_FALSE(std::filesystem::exists(s3_->scratch_dir()));
  TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PackSink> sink, store().Create(13));
  TUSK_ASSERT_OK(sink->Write(0, RandomBytes(100000, 10)));
  struct stat st;
  ASSERT_EQ(::stat(s3_->scratch_dir().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(s3_->ScratchFiles(), std::vector<std::string>()) << "even while a sink writes";
  TUSK_ASSERT_OK(sink->Finish());
}

// The real transport, except that every attempt to upload part 3 of a
// multipart upload fails with 503 (which the client retries, then gives up
// on). Notes the upload ids the server hands out.
class PartThreeFails final : public s3::HttpTransport {
 public:
  explicit PartThreeFails(std::unique_ptr<s3::HttpTransport> real) : real_(std::move(real)) {}
  s3::HttpResponse Perform(const s3::HttpRequest& request) override {
    if (request.method == "PUT" && request.url.find("partNumber=3&") != std::string::npos) {
      s3::HttpResponse refused;
      refused.status = 503;
      return refused;
    }
    s3::HttpResponse response = real_->Perform(request);
    size_t start = response.body.find("<UploadId>");
    size_t end = response.body.find("</UploadId>");
    if (request.method == "POST" && start != std::string::npos && end != std::string::npos) {
      std::lock_guard lock(mu_);
      start += std::strlen("<UploadId>");
      upload_ids_.push_back(response.body.substr(start, end - start));
    }
    return response;
  }
  std::vector<std::string> upload_ids() {
    std::lock_guard lock(mu_);
    return upload_ids_;
  }

 private:
  std::unique_ptr<s3::HttpTransport> real_;
  std::mutex mu_;
  std::vector<std::string> upload_ids_;  // guarded by mu_
};

TEST_F(S3PackStoreTest, AFailedMultipartFinishIsAbortedListsNothingAndNamesThePack) {
  s3::ClientOptions options = server_->options;
  options.retry.max_attempts = 2;
  options.retry.first_delay = milliseconds(10);
  Result<std::unique_ptr<s3::HttpTransport>> real = s3::NewCurlTransport(options, options.region, server_->credentials);
  ASSERT_TRUE(real.ok()) << real.status().ToString();
  auto failing = std::make_unique<PartThreeFails>(std::move(real).value());
  PartThreeFails* transport = failing.get();
  Result<std::unique_ptr<s3::Client>> created =
      s3::Client::CreateWithTransport(client().bucket(), options, server_->credentials, std::move(failing));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::shared_ptr<s3::Client> shared = std::move(created).value();
  S3PackStoreOptions store_options;
  store_options.scratch_dir = s3_->scratch_dir();
  store_options.part_size = kPartSize;
  std::unique_ptr<PackStore> store = NewS3PackStore(shared, "repo/", store_options);

  Status finished = WritePack(*store, 14, RandomBytes(4 * kPartSize, 11), 1 << 20);
  EXPECT_EQ(finished.code(), Code::kIoError) << finished.ToString();
  EXPECT_TRUE(Mentions(finished, PackName(14) + ".pack")) << finished.ToString();
  EXPECT_TRUE(Listed(*store).empty());
  EXPECT_TRUE(AllKeys().empty());
  ASSERT_EQ(transport->upload_ids().size(), 1u);
  EXPECT_EQ(shared->ListParts("repo/packs/000000000000000e.pack", transport->upload_ids()[0]).status().code(),
            Code::kNotFound)
      << "aborted";
  EXPECT_EQ(s3_->ScratchFiles(), std::vector<std::string>());
}

// ---------------------------------------------------------------- S3 only, dead servers (no server needed)

// A server on 127.0.0.1 that answers its first request "404 Not Found"
// and then goes away, its port closed: every later connection is refused.
// That is enough to create a sink (Create's HEAD finds no pack) whose
// Finish then meets a dead server.
class ServerThatDiesAfterOneAnswer {
 public:
  ServerThatDiesAfterOneAnswer() {
    listener_ = test_util::ListenOnLoopback(4, &port_);
    thread_ = std::jthread([this] { AnswerOnceThenClose(); });
  }
  ServerThatDiesAfterOneAnswer(const ServerThatDiesAfterOneAnswer&) = delete;
  ServerThatDiesAfterOneAnswer& operator=(const ServerThatDiesAfterOneAnswer&) = delete;

  int port() const { return port_; }
  // Returns once the port is closed.
  void WaitUntilGone() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  void AnswerOnceThenClose() {
    pollfd listening{listener_, POLLIN, 0};
    if (::poll(&listening, 1, 10000) == 1) {  // bounded: a test that never connects does not hang
      int conn = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn >= 0) {
        std::string request;
        char buf[4096];
        pollfd readable{conn, POLLIN, 0};
        while (request.find("\r\n\r\n") == std::string::npos && ::poll(&readable, 1, 5000) == 1) {
          ssize_t n = ::read(conn, buf, sizeof buf);
          if (n <= 0) break;
          request.append(buf, static_cast<size_t>(n));
        }
        static constexpr char kAnswer[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        if (::write(conn, kAnswer, sizeof kAnswer - 1) < 0) ADD_FAILURE() << "cannot answer: " << std::strerror(errno);
        ::close(conn);
      }
    }
    ::close(listener_);
  }

  int listener_ = -1;
  int port_ = 0;
  std::jthread thread_;
};

std::unique_ptr<PackStore> StoreOn(int port, const std::string& scratch_dir) {
  auto client = s3::Client::Create("bkt", FastFailingOptions(port), {"AKIDSPECIMENKEY12345", "specimensecret", ""});
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  S3PackStoreOptions options;
  options.scratch_dir = scratch_dir;
  options.part_size = kPartSize;
  return NewS3PackStore(std::move(client).value(), "repo/", options);
}

TEST(S3PackStoreDeadServer, OpenOfAPackOnAnUnreachableServerFailsWithinSecondsNamingIt) {
  ServerThatDiesAfterOneAnswer server;
  TempDir scratch;
  std::unique_ptr<PackStore> store = StoreOn(server.port(), scratch.path());
  EXPECT_EQ(store->Open(21).status().code(), Code::kNotFound) << "the one answer";
  server.WaitUntilGone();

  auto start = steady_clock::now();
  Result<std::unique_ptr<RandomAccessFile>> opened = store->Open(21);
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(opened.status().code(), Code::kIoError) << opened.status().ToString();
  EXPECT_TRUE(Mentions(opened.status(), PackName(21) + ".pack")) << opened.status().ToString();
}

TEST(S3PackStoreDeadServer, FinishOnAnUnreachableServerFailsWithinSecondsNamingThePack) {
  TempDir scratch;
  for (size_t size : {size_t{1000}, 2 * kPartSize}) {  // one PUT, and a multipart upload
    SCOPED_TRACE(size);
    ServerThatDiesAfterOneAnswer server;
    std::unique_ptr<PackStore> store = StoreOn(server.port(), scratch.path());
    TUSK_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PackSink> sink, store->Create(22));
    TUSK_ASSERT_OK(sink->Write(0, RandomBytes(size, 12)));
    server.WaitUntilGone();

    auto start = steady_clock::now();
    Status finished = sink->Finish();
    EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
    EXPECT_EQ(finished.code(), Code::kIoError) << finished.ToString();
    EXPECT_TRUE(Mentions(finished, PackName(22) + ".pack")) << finished.ToString();
    sink.reset();
    EXPECT_EQ(FilesUnder(scratch.path()), std::vector<std::string>());
  }
}

}  // namespace
}  // namespace tusk
