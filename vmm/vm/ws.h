/*
 * The working set of a snapshot (docs/snapshots.md): `run --restore DIR
 * --record-ws[=STOP]` records the pages installed for the restored VM, in
 * order, into DIR/ws; a later restore of DIR prefetches them (--prefetch).
 *
 * DIR/ws, little-endian: a header of WS_HEADER_LEN bytes
 *   "FLWS", u32 version (1), the snapshot's id (32 characters, NUL-padded),
 *   u64 pages of RAM, u32 what stopped the recording (enum vm_ws_stop),
 *   u32 0, u64 its value, u64 microseconds recorded, u64 count,
 *   u64 XXH3-64 of the pages;
 * then count u32 host page indexes, in order, each once, bit 31
 * (MMU_WS_WRITTEN) set on those that were written while recorded: a
 * prefetch installs them writable.
 * It is written as DIR/ws.tmp.PID and renamed over DIR/ws once whole.
 */
#ifndef FAULTLINE_WS_H
#define FAULTLINE_WS_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/vm/vm.h"

#define WS_FILE	      "ws"
#define WS_TMP_FILE   "ws.tmp.%d" /* the pid */
#define WS_MAGIC      "FLWS"
#define WS_VERSION    1
#define WS_HEADER_LEN 88
#define WS_WHY_LEN    256

/* What a recording says of itself (the header). */
struct ws_info {
	char id[VM_SNAP_ID_LEN + 1];
	uint64_t ram_pages;
	struct vm_ws_until until;
	uint64_t elapsed_us;
	uint64_t count;
};

/*
 * --record-ws's STOP: "port", "Nms" (1..3600000) or "Npages" (>= 1); NULL
 * or "" is the VM's end. 0, or -EINVAL (the caller reports).
 */
int ws__parse_until(const char *s, struct vm_ws_until *u);

/* STOP as the user writes it ("port", "250ms", "end"), into @buf. */
const char *ws__until_str(const struct vm_ws_until *u, char *buf, size_t len);

/*
 * A recording of @info->count pages as the bytes of DIR/ws, into a new
 * buffer *@out (freed by the caller) of *@len bytes. 0 or -ENOMEM.
 */
int ws__encode(const struct ws_info *info, const uint32_t *pages, uint8_t **out, size_t *len)
	__attribute__((warn_unused_result));

/*
 * Check the bytes of DIR/ws against the snapshot (@id, @ram_pages) and
 * give its pages (*@pages, freed by the caller; NULL when count is 0).
 * 0, or -EINVAL with @why (WS_WHY_LEN bytes) saying what is wrong and the
 * field; -ENOMEM.
 */
int ws__decode(const uint8_t *buf, size_t len, const char *id, uint64_t ram_pages,
	       struct ws_info *info, uint32_t **pages, char *why)
	__attribute__((warn_unused_result));

/*
 * --record-ws, before the VM is made: open DIR and create DIR/ws.tmp.PID
 * (@w's fds, -1 on failure). 0, or an exit status after reporting (66:
 * DIR/ws.tmp.PID cannot be created, a read-only file system among the
 * reasons; 70).
 */
int ws__open(struct vm_ws *w, const char *dir, const char *id, const struct vm_ws_until *until);

/*
 * The prefetch a restore of DIR does (@mode), before the VM is made: the
 * recording's pages when DIR/ws is there (or must be), checked. 0 with
 * *@pages (NULL: none) and *@n, or an exit status after reporting (66:
 * --prefetch ws and no DIR/ws; 78: it does not match the snapshot).
 */
int ws__load(const char *dir, const char *id, uint64_t ram_pages, enum vm_prefetch mode,
	     uint32_t **pages, uint64_t *n);

/*
 * vm__restore(), before the handlers start: the plan of @mode for them, @pages from
 * ws__load() (or none), or the memory file's pages (seq). 0 or -errno
 * (reported).
 */
int vm__prefetch(struct vm *vm, enum vm_prefetch mode, const uint32_t *pages, uint64_t n)
	__attribute__((warn_unused_result));

#endif
