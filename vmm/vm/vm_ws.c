/*
 * The working set of a snapshot: DIR/ws, recorded by one restore
 * (--record-ws) and prefetched by the next (--prefetch). The format is in
 * vmm/vm/ws.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/bitmap.h"
#include "lib/file.h"
#include "lib/inject.h"
#include "lib/log.h"
#include "lib/status.h"
#include "vmm/vm/ws.h"

int ws__parse_until(const char *s, struct vm_ws_until *u)
{
	unsigned long long v;
	char *end;

	memset(u, 0, sizeof(*u));
	if (!s || !*s || !strcmp(s, "end"))
		return 0;
	if (!strcmp(s, "port")) {
		u->kind = VM_WS_STOP_PORT;
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || v == 0)
		return -EINVAL;
	if (!strcmp(end, "ms") && v <= 3600000)
		u->kind = VM_WS_STOP_MS;
	else if (!strcmp(end, "pages") && v <= UINT32_MAX)
		u->kind = VM_WS_STOP_PAGES;
	else
		return -EINVAL;
	u->value = v;
	return 0;
}

const char *ws__until_str(const struct vm_ws_until *u, char *buf, size_t len)
{
	switch (u->kind) {
	case VM_WS_STOP_END: snprintf(buf, len, "end"); break;
	case VM_WS_STOP_PORT: snprintf(buf, len, "port"); break;
	case VM_WS_STOP_MS: snprintf(buf, len, "%" PRIu64 "ms", u->value); break;
	case VM_WS_STOP_PAGES: snprintf(buf, len, "%" PRIu64 "pages", u->value); break;
	}
	return buf;
}

static void put32(uint8_t *p, uint32_t v)
{
	unsigned i;

	for (i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	unsigned i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

int ws__encode(const struct ws_info *info, const uint32_t *pages, uint8_t **out, size_t *len)
{
	size_t n = WS_HEADER_LEN + (size_t)info->count * 4, i;
	uint8_t *b = inject__check("malloc.ws") ? NULL : calloc(1, n);

	if (!b)
		return -ENOMEM;
	memcpy(b, WS_MAGIC, 4);
	put32(b + 4, WS_VERSION);
	memcpy(b + 8, info->id, strnlen(info->id, VM_SNAP_ID_LEN));
	put64(b + 40, info->ram_pages);
	put32(b + 48, (uint32_t)info->until.kind);
	put64(b + 56, info->until.value);
	put64(b + 64, info->elapsed_us);
	put64(b + 72, info->count);
	for (i = 0; i < info->count; i++)
		put32(b + WS_HEADER_LEN + 4 * i, pages[i]);
	put64(b + 80, XXH3_64bits(b + WS_HEADER_LEN, n - WS_HEADER_LEN));
	*out = b;
	*len = n;
	return 0;
}

int ws__decode(const uint8_t *buf, size_t len, const char *id, uint64_t ram_pages,
	       struct ws_info *info, uint32_t **pages, char *why)
{
	unsigned long *seen = NULL;
	uint32_t *p = NULL;
	uint64_t i;

	*pages = NULL;
	memset(info, 0, sizeof(*info));
	if (len < WS_HEADER_LEN || memcmp(buf, WS_MAGIC, 4))
		return log__why(why, WS_WHY_LEN, -EINVAL,
				"not a working-set recording (field: magic)");
	if (get32(buf + 4) != WS_VERSION)
		return log__why(why, WS_WHY_LEN, -EINVAL,
				"version %" PRIu32 ", this faultline reads %d (field: version)",
				get32(buf + 4), WS_VERSION);
	memcpy(info->id, buf + 8, VM_SNAP_ID_LEN);
	info->id[VM_SNAP_ID_LEN] = '\0';
	info->ram_pages = get64(buf + 40);
	info->until.kind = (enum vm_ws_stop)get32(buf + 48);
	info->until.value = get64(buf + 56);
	info->elapsed_us = get64(buf + 64);
	info->count = get64(buf + 72);
	if (strcmp(info->id, id))
		return log__why(why, WS_WHY_LEN, -EINVAL,
				"recorded for snapshot '%s', this one is '%s' (field: id)",
				info->id, id);
	if (info->ram_pages != ram_pages)
		return log__why(why, WS_WHY_LEN, -EINVAL,
				"recorded for %" PRIu64 " pages of RAM, the snapshot has %" PRIu64
				" (field: ram_pages)",
				info->ram_pages, ram_pages);
	if (get32(buf + 48) > VM_WS_STOP_PAGES)
		return log__why(why, WS_WHY_LEN, -EINVAL, "no such stop %" PRIu32 " (field: stop)",
				get32(buf + 48));
	if (info->count > ram_pages || (len - WS_HEADER_LEN) / 4 != info->count ||
	    (len - WS_HEADER_LEN) % 4)
		return log__why(why, WS_WHY_LEN, -EINVAL,
				"%" PRIu64 " pages in %zu bytes (field: count)", info->count, len);
	if (XXH3_64bits(buf + WS_HEADER_LEN, len - WS_HEADER_LEN) != get64(buf + 80))
		return log__why(why, WS_WHY_LEN, -EINVAL,
				"the pages do not match their checksum (field: checksum)");
	if (!info->count)
		return 0;
	p = malloc(info->count * sizeof(*p));
	seen = calloc(bitmap_words(ram_pages), sizeof(*seen));
	if (!p || !seen || inject__check("malloc.ws_load")) {
		free(p);
		free(seen);
		return -ENOMEM;
	}
	for (i = 0; i < info->count; i++) {
		uint32_t pi;

		p[i] = get32(buf + WS_HEADER_LEN + 4 * i);
		pi = p[i] & ~MMU_WS_WRITTEN;
		if (pi >= ram_pages || bit_test(seen, pi)) {
			log__why(why, WS_WHY_LEN, -EINVAL,
				 "page %" PRIu32 " %s (field: pages[%" PRIu64 "])", pi,
				 pi >= ram_pages ? "is past the end of RAM" : "is there twice", i);
			free(p);
			free(seen);
			return -EINVAL;
		}
		bit_set(seen, pi);
	}
	free(seen);
	*pages = p;
	return 0;
}

int ws__open(struct vm_ws *w, const char *dir, const char *id, const struct vm_ws_until *until)
{
	int err;

	memset(w, 0, sizeof(*w));
	w->dir_fd = w->tmp_fd = w->done_fd = -1;
	w->until = *until;
	snprintf(w->dir, sizeof(w->dir), "%s", dir);
	snprintf(w->id, sizeof(w->id), "%s", id);
	snprintf(w->tmp, sizeof(w->tmp), WS_TMP_FILE, (int)getpid());
	w->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dir_fd >= 0)
		w->tmp_fd = inject__fail("open.ws")
				    ?: openat(w->dir_fd, w->tmp,
					      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
					      0644);
	if (w->dir_fd < 0 || w->tmp_fd < 0) {
		err = errno;
		pr_err("cannot record the working set: cannot create it: %s (file: %s/%s)",
		       strerror(err), dir, w->tmp);
		vm__ws_close(w);
		return FL_EXIT_NOINPUT;
	}
	w->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->done_fd < 0) {
		pr_err("cannot record the working set: eventfd failed: %s", strerror(errno));
		vm__ws_close(w);
		return FL_EXIT_INTERNAL;
	}
	return 0;
}

void vm__ws_close(struct vm_ws *w)
{
	char path[sizeof(w->dir) + sizeof(w->tmp) + 1];

	/* unlink(), not unlinkat(): the one the seccomp filter allows. */
	snprintf(path, sizeof(path), "%s/%s", w->dir, w->tmp);
	if (w->tmp_fd >= 0 && !w->saved && unlink(path) && errno != ENOENT)
		pr_err("cannot remove a recording not made: %s (file: %s)", strerror(errno), path);
	if (w->tmp_fd >= 0)
		close(w->tmp_fd);
	if (w->dir_fd >= 0)
		close(w->dir_fd);
	if (w->done_fd >= 0)
		close(w->done_fd);
	w->dir_fd = w->tmp_fd = w->done_fd = -1;
}

int ws__load(const char *dir, const char *id, uint64_t ram_pages, enum vm_prefetch mode,
	     uint32_t **pages, uint64_t *n)
{
	char path[4096 + 8], why[WS_WHY_LEN];
	struct ws_info info;
	uint8_t *buf = NULL;
	size_t len = 0;
	int err = 0, ret;

	*pages = NULL;
	*n = 0;
	if (mode != VM_PREFETCH_AUTO && mode != VM_PREFETCH_WS)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir, WS_FILE);
	switch (file__read_all(path, WS_HEADER_LEN + ram_pages * 4, &buf, &len, &err)) {
	case FILE_OK: break;
	case FILE_OPEN:
		if (err == ENOENT && mode == VM_PREFETCH_AUTO)
			return 0;
		pr_err("cannot prefetch the working set: %s%s (file: %s)", strerror(err),
		       err == ENOENT
			       ? "; record one with --record-ws, or give --prefetch off or seq"
			       : "",
		       path);
		return FL_EXIT_NOINPUT;
	case FILE_NOT_REGULAR:
	case FILE_READ:
		pr_err("cannot prefetch the working set: cannot read it: %s (file: %s)",
		       err ? strerror(err) : "not a regular file, or it shrank", path);
		return FL_EXIT_NOINPUT;
	case FILE_TOO_BIG:
		pr_err("cannot prefetch the working set: %zu bytes, more than a recording of "
		       "%" PRIu64
		       " pages can be; record it again, or give --prefetch off (file: %s)",
		       len, ram_pages, path);
		return FL_EXIT_SNAPSHOT;
	case FILE_NO_MEMORY:
		pr_err("cannot prefetch the working set: out of memory (file: %s)", path);
		return FL_EXIT_INTERNAL;
	}
	ret = ws__decode(buf, len, id, ram_pages, &info, pages, why);
	free(buf);
	if (ret == -ENOMEM) {
		pr_err("cannot prefetch the working set: out of memory (file: %s)", path);
		return FL_EXIT_INTERNAL;
	}
	if (ret) {
		pr_err("cannot prefetch the working set: %s; record it again, or give --prefetch "
		       "off (file: %s)",
		       why, path);
		return FL_EXIT_SNAPSHOT;
	}
	*n = info.count;
	return 0;
}

int vm__prefetch(struct vm *vm, enum vm_prefetch mode, const uint32_t *pages, uint64_t n)
{
	int ret = 0;

	if (mode == VM_PREFETCH_SEQ)
		ret = mmu__prefetch_seq(&vm->mmu);
	else if (pages && (mode == VM_PREFETCH_WS || mode == VM_PREFETCH_AUTO))
		ret = mmu__prefetch_pages(&vm->mmu, pages, n);
	if (ret)
		pr_err("cannot prefetch %s: %s",
		       mode == VM_PREFETCH_SEQ ? "the memory file" : "the working set",
		       strerror(-ret));
	return ret;
}

/* The boot timer was written (--record-ws=port). */
static void ws_port_written(void *ctx)
{
	vm__ws_stop(ctx, VM_WS_STOP_PORT);
}

int vm__ws_start(struct vm *vm)
{
	struct vm_ws *w = &vm->ws;
	uint64_t max = w->until.kind == VM_WS_STOP_PAGES ? w->until.value : vm->mmu.nr_pages;
	int ret;

	if (w->dir_fd < 0)
		return 0;
	ret = mmu__record(&vm->mmu, max, w->done_fd);
	if (ret) {
		pr_err("cannot record the working set: %s", strerror(-ret));
		return ret;
	}
	if (w->until.kind == VM_WS_STOP_PORT) {
		vm->boot_timer.written_ctx = vm;
		__atomic_store_n(&vm->boot_timer.written, ws_port_written, __ATOMIC_RELEASE);
	}
	return 0;
}

void vm__ws_stop(struct vm *vm, enum vm_ws_stop why)
{
	uint64_t one = 1, zero = 0, now = mmu__now_ns();

	if (vm->ws.dir_fd < 0 || !__atomic_compare_exchange_n(&vm->ws.stop_ns, &zero, now, false,
							      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return;
	vm->ws.why = why;
	mmu__record_stop(&vm->mmu);
	if (write(vm->ws.done_fd, &one, sizeof(one)) < 0) {
		/* Full cannot happen (one write); the VM's end saves it otherwise. */
	}
}

/* Write the recording as DIR/ws.tmp.PID, then rename it over DIR/ws. 0 or -errno, @step set. */
static int ws_write(struct vm *vm, const char **step)
{
	struct vm_ws *w = &vm->ws;
	uint64_t run_ns = __atomic_load_n(&vm->run_ns, __ATOMIC_ACQUIRE);
	struct ws_info info = {.ram_pages = vm->mmu.nr_pages, .until = w->until};
	uint32_t *pages = malloc((vm->mmu.ws.max ? vm->mmu.ws.max : 1) * sizeof(*pages));
	uint8_t *buf = NULL;
	size_t len = 0, done = 0;
	ssize_t r;
	int ret;

	*step = "out of memory";
	if (!pages)
		return -ENOMEM;
	snprintf(info.id, sizeof(info.id), "%s", w->id);
	mmu__recorded(&vm->mmu, pages, &info.count);
	info.until.kind = w->why;
	if (w->why != w->until.kind)
		info.until.value = 0;
	info.elapsed_us = run_ns && w->stop_ns > run_ns ? (w->stop_ns - run_ns) / 1000 : 0;
	ret = ws__encode(&info, pages, &buf, &len);
	free(pages);
	if (ret)
		return ret;
	*step = "write";
	while (done < len) {
		r = inject__fail("write.ws")
			    ?: pwrite(w->tmp_fd, buf + done, len - done, (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ret = r < 0 ? -errno : -EIO;
			free(buf);
			return ret;
		}
		done += (size_t)r;
	}
	free(buf);
	*step = "fsync";
	if ((inject__fail("fsync.ws") ?: fsync(w->tmp_fd)) < 0)
		return -errno;
	*step = "rename";
	if (renameat(w->dir_fd, w->tmp, w->dir_fd, WS_FILE) < 0)
		return -errno;
	w->saved = true;
	pr_err("recorded the working set: %" PRIu64 " pages in %" PRIu64 " ms, until %s (file: "
	       "%s/%s)",
	       info.count, info.elapsed_us / 1000,
	       w->why == VM_WS_STOP_END	   ? "the VM's end"
	       : w->why == VM_WS_STOP_PORT ? "the guest wrote the boot timer"
	       : w->why == VM_WS_STOP_MS   ? "the time given"
					   : "the page count given",
	       w->dir, WS_FILE);
	return 0;
}

void vm__ws_save(struct vm *vm)
{
	const char *step = "";
	int ret;

	if (vm->ws.dir_fd < 0 || vm->ws.saved || vm->ws.failed)
		return;
	/* Nothing when it stopped already; the engine stops by itself at the page count. */
	vm__ws_stop(vm, __atomic_load_n(&vm->mmu.ws.on, __ATOMIC_ACQUIRE) ||
					vm->ws.until.kind != VM_WS_STOP_PAGES
				? VM_WS_STOP_END
				: VM_WS_STOP_PAGES);
	ret = ws_write(vm, &step);
	if (!ret)
		return;
	vm->ws.failed = true;
	pr_err("cannot record the working set: %s failed: %s; %s/%s is as it was (file: %s/%s)",
	       step, strerror(-ret), vm->ws.dir, WS_FILE, vm->ws.dir, vm->ws.tmp);
}

int vm__ws_wait_ms(struct vm *vm)
{
	uint64_t run_ns = __atomic_load_n(&vm->run_ns, __ATOMIC_ACQUIRE), deadline, now;

	if (vm->ws.dir_fd < 0 || vm->ws.until.kind != VM_WS_STOP_MS || !run_ns ||
	    __atomic_load_n(&vm->ws.stop_ns, __ATOMIC_ACQUIRE))
		return -1;
	deadline = run_ns + vm->ws.until.value * 1000000ULL;
	now = mmu__now_ns();
	return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}
