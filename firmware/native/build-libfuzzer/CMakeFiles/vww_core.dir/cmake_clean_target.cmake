file(REMOVE_RECURSE
  "libvww_core.a"
)
