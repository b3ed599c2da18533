#!/bin/sh
# bench/qemu-stage.sh [DIR]: copy this machine's QEMU (Debian's
# qemu-system-x86, installed by scripts/deps) into DIR (build/qemu) so that
# it runs inside the nested harness's L1, which has no QEMU of its own:
# the binary, its shared libraries, the loader and the firmware.
# bench/qemu-peer.sh runs it as
#   DIR/ld-linux-x86-64.so.2 --library-path DIR/lib DIR/qemu-system-x86_64 -L DIR/share ...
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build/qemu}
qemu=$(command -v qemu-system-x86_64) || { echo "bench/qemu-stage.sh: no qemu-system-x86_64 (make deps)" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir/lib" "$dir/share"
cp -L "$qemu" "$dir/qemu-system-x86_64"
ldd "$qemu" | while read -r name arrow path _; do
	case "$name" in
	*/ld-linux-x86-64.so.2) cp -L "$name" "$dir/ld-linux-x86-64.so.2" ;;
	linux-vdso.so.*) ;;
	*) [ "$arrow" = "=>" ] && [ -f "$path" ] && cp -L "$path" "$dir/lib/" ;;
	esac
done
[ -f "$dir/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$dir/"
# qboot for -M microvm, SeaBIOS and the option ROMs for -M pc
for f in bios-microvm.bin qboot.rom bios-256k.bin bios.bin linuxboot_dma.bin linuxboot.bin kvmvapic.bin \
	multiboot_dma.bin pvh.bin efi-virtio.rom vgabios-stdvga.bin; do
	for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
		[ -f "$d/$f" ] && { cp -L "$d/$f" "$dir/share/"; break; }
	done
done
echo "bench/qemu-stage.sh: $("$qemu" --version | head -n 1) in $dir ($(du -sk "$dir" | cut -f1) KiB)"
