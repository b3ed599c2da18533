# Sourced by tests/host/run.

# ---- the layer rule (scripts/layers, docs/hacking.md) ----

# The tree keeps it: nothing printed, status 0.
t_layers_hold() {
	cmd scripts/layers
	expect_rc 0
	expect_no_err
	[ ! -s "$T/out" ] || problem "breaches: $(head -n 5 "$T/out" | tr '\n' ';')"
}

# A tree of files, each "PATH:INCLUDED..." (no includes after the colon: none).
layer_tree() {
	rm -rf "$T/tree"
	for spec in "$@"; do
		f=${spec%%:*}
		mkdir -p "$T/tree/$(dirname "$f")"
		: >"$T/tree/$f"
		for h in $(echo "${spec#*:}" | tr ',' ' '); do
			echo "#include \"$h\"" >>"$T/tree/$f"
		done
	done
}

t_layers_upward() {
	layer_tree lib/a.h:vmm/cmd/cli.h vmm/cmd/cli.h: mmu/m.c:lib/a.h,vmm/vm/vm.h vmm/vm/vm.h:
	cmd scripts/layers "$T/tree"
	expect_rc 1
	expect_out "lib/a.h:1: includes vmm/cmd/cli.h: vmm/cmd/ is not below lib/"
	expect_out "mmu/m.c:2: includes vmm/vm/vm.h: vmm/vm/ is not below mmu/"
	[ "$(wc -l <"$T/out")" = 2 ] || problem "expected 2 lines: $(tr '\n' ';' <"$T/out")"
}

# Folders of one rank do not include each other.
t_layers_siblings() {
	layer_tree devices/legacy/x.c:devices/virtio/y.h,devices/bus.h devices/virtio/y.h: devices/bus.h:
	cmd scripts/layers "$T/tree"
	expect_rc 1
	expect_out "devices/legacy/x.c:1: includes devices/virtio/y.h: devices/virtio/ is not below devices/legacy/"
	[ "$(wc -l <"$T/out")" = 1 ] || problem "expected 1 line: $(tr '\n' ';' <"$T/out")"
}

# A module's NAME_int.h is its own: including it, and it including NAME.h,
# is no cycle.
t_layers_cycle() {
	layer_tree mmu/a.c:mmu/a.h,mmu/b.h,mmu/a_int.h mmu/a.h: mmu/a_int.h:mmu/a.h \
		mmu/b.c:mmu/b.h,mmu/a.h mmu/b.h: mmu/c.h:mmu/a.h
	cmd scripts/layers "$T/tree"
	expect_rc 1
	expect_out "include cycle: mmu/a -> mmu/b"
	[ "$(wc -l <"$T/out")" = 1 ] || problem "expected 1 line: $(tr '\n' ';' <"$T/out")"
}

t_layers_unknown_folder_and_header() {
	layer_tree vmm/new/z.c: lib/a.c:lib/gone.h,tests/x.h tests/x.h:
	cmd scripts/layers "$T/tree"
	expect_rc 1
	expect_out "vmm/new/z.c: the folder vmm/new/ has no layer (scripts/layers, docs/hacking.md)"
	expect_out "lib/a.c:1: includes lib/gone.h, which does not exist"
	expect_out "lib/a.c:2: includes tests/x.h, from tests/, which has no layer"
}

t_layers_bad_usage() {
	cmd scripts/layers a b
	expect_rc 2
	expect_err "usage: scripts/layers [ROOT]"
	cmd scripts/layers "$T/none"
	expect_rc 2
	expect_err "scripts/layers: no such folder: $T/none"
}

# A static function keeps a plain name; object__verb is for what a header
# exports (and a static inline in a header is exported).
t_layers_static_names() {
	layer_tree mmu/a.c: mmu/a.h:
	printf '%s\n' 'static int mmu__helper(int x);' 'int mmu__init(void);' \
		'static inline void plain_name(void) {}' 'static const struct s *bar__lookup(int k)' \
		'static int table[] = {f__g(1)};' >"$T/tree/mmu/a.c"
	echo 'static inline int mmu__inline(void) { return 0; }' >"$T/tree/mmu/a.h"
	cmd scripts/layers "$T/tree"
	expect_rc 1
	expect_out "mmu/a.c:1: static function mmu__helper has a public name (object__verb is for what a header exports)"
	expect_out "mmu/a.c:4: static function bar__lookup has a public name (object__verb is for what a header exports)"
	[ "$(wc -l <"$T/out")" = 2 ] || problem "expected 2 lines: $(tr '\n' ';' <"$T/out")"
}
