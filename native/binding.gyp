{
  "targets": [{
    "target_name": "veilfs_fuse",
    "sources": ["veilfs-fuse.c"],
    "include_dirs": ["/usr/include/fuse"],
    "defines": ["_FILE_OFFSET_BITS=64"],
    "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    "libraries": ["-lfuse", "-pthread"]
  }, {
    "target_name": "veilfs_crypto",
    "sources": ["veilfs-crypto.c"],
    "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
  }, {
    "target_name": "veilfs_io",
    "sources": ["veilfs-io.c"],
    "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
  }, {
    "target_name": "veilfs_scrypt",
    "sources": ["veilfs-scrypt.c"],
    "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    "libraries": ["-lsodium"]
  }]
}
