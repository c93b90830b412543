{
  "targets": [
    {
      "target_name": "podnet",
      "sources": [
        "csrc/addon/addon.cc",
        "csrc/addon/common.cc",
        "csrc/addon/netns.cc",
        "csrc/addon/nsthread.cc",
        "csrc/addon/stats.cc",
        "csrc/addon/stats_cache.cc",
        "csrc/addon/stats_sockets.cc",
        "csrc/addon/spawn.cc",
        "csrc/addon/pidfd_watch.cc",
        "csrc/addon/lock.cc",
        "csrc/core/errno_name.cc",
        "csrc/core/netns.cc",
        "csrc/core/nsocket.cc",
        "csrc/core/scm_rights.cc",
        "csrc/core/fork.cc",
        "csrc/core/userns_socket.cc",
        "csrc/core/spawn.cc",
        "csrc/core/link_stats.cc",
        "csrc/core/lock.cc",
        "csrc/addon/native_net.cc",
        "csrc/core/native/engine.cc",
        "csrc/core/native/ensured.cc",
        "csrc/core/native/ipam.cc",
        "csrc/core/native/netlink.cc",
        "csrc/core/native/network.cc",
        "csrc/core/native/nft.cc",
        "csrc/core/native/nft_elements.cc",
        "csrc/core/native/util.cc"
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
      # Debian's libnl-3/libnl-route-3 .a archives are not built with -fPIC (linking them
      # into a shared object fails on R_X86_64_PC32 relocations), so link the shared ones.
      "libraries": [
        "-lnl-route-3", "-lnl-3", "-ldl"
      ]
    },
    {
      "target_name": "podnet-portfwd",
      "type": "executable",
      "sources": [
        "csrc/portfwd/main.cc",
        "csrc/portfwd/addr.cc",
        "csrc/portfwd/bulk.cc",
        "csrc/portfwd/json.cc",
        "csrc/portfwd/loop.cc",
        "csrc/portfwd/sandbox_sockets.cc",
        "csrc/portfwd/rtnl.cc",
        "csrc/portfwd/tcp.cc",
        "csrc/portfwd/udp.cc",
        "csrc/portfwd/upstream.cc",
        "csrc/core/errno_name.cc",
        "csrc/core/netns.cc",
        "csrc/core/nsocket.cc",
        "csrc/core/scm_rights.cc"
      ],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "ldflags": ["-pthread", "-static-libstdc++", "-static-libgcc"]
    },
    {
      # The CNI plugin: one process per CNI command, so no Node runtime to start;
      # libstdc++ linked in (as the forwarder) and libnftables dlopen'ed by the engine.
      "target_name": "podnet-cni",
      "type": "executable",
      "sources": [
        "csrc/cniplugin/main.cc",
        "csrc/cniplugin/protocol.cc",
        "csrc/cniplugin/commands.cc",
        "csrc/core/errno_name.cc",
        "csrc/core/lock.cc",
        "csrc/core/netns.cc",
        "csrc/core/nsocket.cc",
        "csrc/core/native/engine.cc",
        "csrc/core/native/ensured.cc",
        "csrc/core/native/ipam.cc",
        "csrc/core/native/netlink.cc",
        "csrc/core/native/network.cc",
        "csrc/core/native/nft.cc",
        "csrc/core/native/nft_elements.cc",
        "csrc/core/native/util.cc"
      ],
      "defines": ["_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "ldflags": ["-pthread", "-static-libstdc++", "-static-libgcc"],
      "libraries": ["-ldl"]
    }
  ]
}
