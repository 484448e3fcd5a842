// --device parsing and resolution, and make_network's choice.
#include <gtest/gtest.h>

#include <string>

#include "backend/backend.h"
#include "common/error.h"
#include "model/random_model.h"

namespace wisp::backend {
namespace {

TEST(Device, ParsesTheNames) {
  EXPECT_EQ(parse_device("auto").kind, Device::Kind::kAuto);
  EXPECT_EQ(parse_device("cpu").kind, Device::Kind::kCpu);
  const Device c = parse_device("cuda");
  EXPECT_EQ(c.kind, Device::Kind::kCuda);
  EXPECT_EQ(c.index, 0);
  EXPECT_EQ(parse_device("cuda:3").index, 3);
  EXPECT_EQ(device_name(parse_device("cuda")), "cuda:0");
  EXPECT_EQ(device_name(parse_device("cuda:12")), "cuda:12");
  EXPECT_EQ(device_name(parse_device("auto")), "auto");
  for (const char* bad : {"", "gpu", "cuda:", "cuda:-1", "cuda:x", "cuda:99999", "CPU", "cuda:1 "}) {
    EXPECT_THROW(parse_device(bad), Error) << "'" << bad << "'";
  }
}

TEST(Device, AutoIsAGpuOnlyWhenOneIsUsable) {
  std::string why;
  const bool usable = cuda_usable(&why);
  const Device d = resolve_device(parse_device("auto"));
  EXPECT_EQ(d.kind, usable ? Device::Kind::kCuda : Device::Kind::kCpu);
  if (!usable) {
    EXPECT_FALSE(why.empty());
    try {
      resolve_device(parse_device("cuda:0"));
      FAIL() << "cuda:0 resolved without a usable GPU";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
    }
  } else {
    EXPECT_THROW(resolve_device(Device{Device::Kind::kCuda, cuda_device_count()}), Error);
  }
  EXPECT_EQ(resolve_device(parse_device("cpu")).kind, Device::Kind::kCpu);
  // auto leaves the int8 types, which CUDA does not run, on the CPU.
  EXPECT_EQ(resolve_device(parse_device("auto"), nn::ComputeType::kInt8).kind, Device::Kind::kCpu);
  EXPECT_EQ(resolve_device(parse_device("auto"), nn::ComputeType::kFloat16).kind,
            usable ? Device::Kind::kCuda : Device::Kind::kCpu);
  EXPECT_FALSE(cuda_runs(nn::ComputeType::kInt8BFloat16));
  EXPECT_TRUE(cuda_runs(nn::ComputeType::kAuto));
}

TEST(Device, MakeNetworkBuildsOnTheDevice) {
  const model::Model m = model::make_random_model(*model::preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  NetworkOptions cpu;
  EXPECT_EQ(make_network(m, cpu)->device(), "cpu");
  NetworkOptions any;
  any.device = parse_device("auto");
  any.type = nn::ComputeType::kFloat32;
  EXPECT_EQ(make_network(m, any)->device(), cuda_usable() ? "cuda:0" : "cpu");
}

}  // namespace
}  // namespace wisp::backend
