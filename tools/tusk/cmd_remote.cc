// tusk remote: the store's remotes on S3-compatible object storage
// (store/remote/remote.h).
#include <iostream>

#include "store/remote/remote.h"
#include "tools/tusk/cli_util.h"

namespace tusk::cli {
namespace {

struct AddOpts {
  Remote remote;
  bool path_style = false, virtual_host = false, create_bucket = false;
};

int RunAdd(const Cli& cli, AddOpts o) {
  if (o.path_style && o.virtual_host) return Fail("--path-style and --virtual-host exclude each other");
  if (o.path_style) o.remote.addressing = Remote::Addressing::kPathStyle;
  if (o.virtual_host) o.remote.addressing = Remote::Addressing::kVirtualHost;
  // Opening the store checks that it exists and that this user may change it.
  auto repo = cli.OpenStore(StoreAccess::kReadWrite);
  if (!repo.ok()) return Fail(repo.status());
  Status st = AddRemote(Env::Default(), cli.StoreDir(), o.remote, o.create_bucket);
  if (!st.ok()) return Fail(st);
  std::cout << "Added remote " << o.remote.name << ": " << o.remote.url << " at "
            << (o.remote.endpoint.empty() ? "AWS" : o.remote.endpoint) << std::endl;
  return 0;
}

int RunList(const Cli& cli, bool json) {
  auto repo = cli.OpenStore(StoreAccess::kReadOnly);
  if (!repo.ok()) return Fail(repo.status());
  auto remotes = LoadRemotes(Env::Default(), cli.StoreDir());
  if (!remotes.ok()) return Fail(remotes.status());
  Json j;
  j.BeginArray();
  for (const Remote& r : *remotes) {
    if (json) {
      j.BeginObject().Key("name").String(r.name).Key("url").String(r.url);
      j.Key("endpoint").String(r.endpoint).Key("region").String(r.region);
      j.Key("addressing").String(AddressingName(r.addressing)).Key("insecure").Bool(r.insecure).EndObject();
      continue;
    }
    std::cout << r.name << "\t" << r.url << "\t" << (r.endpoint.empty() ? "AWS" : r.endpoint);
    if (!r.region.empty()) std::cout << "\tregion " << r.region;
    if (r.addressing != Remote::Addressing::kAuto) std::cout << "\t" << AddressingName(r.addressing) << " addressing";
    if (r.insecure) std::cout << "\tTLS not verified";
    std::cout << "\n";
  }
  if (json) j.EndArray().Print();
  return 0;
}

int RunRemove(const Cli& cli, const std::string& name) {
  auto repo = cli.OpenStore(StoreAccess::kReadWrite);
  if (!repo.ok()) return Fail(repo.status());
  // Data fetched from the remote is read from there: without the remote it
  // could not be read at all.
  auto placed = (*repo)->RegisteredPacks();
  if (!placed.ok()) return Fail(placed.status());
  size_t packs = 0;
  for (const auto& [id, remote] : *placed) packs += remote == name;
  if (packs > 0)
    return Fail("remote '" + name + "' is not removed: this store reads " + std::to_string(packs) +
                " pack(s) of data from it (what fetch, pull and clone brought), which would become unreadable");
  Status st = RemoveRemote(Env::Default(), cli.StoreDir(), name);
  if (!st.ok()) return Fail(st);
  if (Status dropped = (*repo)->DropRemoteRefs(name); !dropped.ok()) return Fail(dropped);
  std::cout << "Removed remote " << name << " (nothing on the bucket changed)" << std::endl;
  return 0;
}

}  // namespace

void AddRemoteCommands(CLI::App& app, Cli& cli) {
  CLI::App* remote = app.add_subcommand("remote", "Remotes: S3 locations to push datasets to and pull them from");
  remote->require_subcommand(1);
  remote->footer(
      "Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN), or AWS_PROFILE in\n"
      "~/.aws/credentials; they are never written into the store. See man tusk-remote.");

  auto add = std::make_shared<AddOpts>();
  CLI::App* a = remote->add_subcommand("add", "Add a remote: tusk remote add NAME s3://BUCKET[/PREFIX]");
  a->add_option("name", add->remote.name, "Name of the remote")->required();
  a->add_option("url", add->remote.url, "s3://BUCKET[/PREFIX]")->required();
  a->add_option("--endpoint", add->remote.endpoint,
                "S3 server other than AWS, e.g. http://127.0.0.1:7480 (path-style addressing then)");
  a->add_option("--region", add->remote.region, "Region (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1)");
  a->add_flag("--path-style", add->path_style, "Address the bucket in the path (http://host/BUCKET/KEY)");
  a->add_flag("--virtual-host", add->virtual_host, "Address the bucket in the host name (BUCKET.host)");
  a->add_flag("--insecure", add->remote.insecure, "Do not verify the server's TLS certificate");
  a->add_flag("--create-bucket", add->create_bucket, "Create the bucket if it does not exist");
  a->callback([add, &cli] { cli.exit_code = RunAdd(cli, *add); });

  auto list_json = std::make_shared<bool>(false);
  CLI::App* l = remote->add_subcommand("list", "List the store's remotes");
  AddJsonFlag(l, list_json.get());
  l->callback([list_json, &cli] { cli.exit_code = RunList(cli, *list_json); });

  auto name = std::make_shared<std::string>();
  CLI::App* r = remote->add_subcommand("remove", "Forget a remote (its bucket is left as it is)");
  r->add_option("name", *name, "Name of the remote")->required();
  r->callback([name, &cli] { cli.exit_code = RunRemove(cli, *name); });
}

}  // namespace tusk::cli
