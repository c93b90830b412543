{
  "targets": [
    {
      "target_name": "podnet",
      "sources": [
        "csrc/addon.cc",
        "csrc/common.cc",
        "csrc/netns.cc",
        "csrc/stats.cc",
        "csrc/spawn.cc",
        "csrc/relay.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "/usr/include/libnl3"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "ldflags": ["-pthread"],
      "libraries": [
        "-lnl-route-3", "-lnl-3"
      ]
    }
  ]
}
