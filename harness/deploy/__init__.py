"""deploy: from a model file to firmware on a board.

codegen (model array, op resolver, config header) -> PlatformIO build (pio) -> sizes from
the ELF (elf_size) -> upload (flash); camera mode on the host (live, frames); the Renode
script (renode_script). ``api.build_and_flash`` is what ``hil bench --flash`` calls.
"""
