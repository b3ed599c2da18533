/*
 * The dedup engine: knobs, the mappings of the process, shared pages, page
 * state, set-up and counters. The overview and the locking rules are in
 * mmu/dedup.h; dedup_int.h says which file holds what.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/bitmap.h"
#include "lib/inject.h"
#include "lib/log.h"
#include "mmu/dedup.h"
#include "mmu/dedup_int.h"
#include "mmu/mmu.h"
#include "mmu/uffd_compat.h"

const uint8_t dedup_zero_page[PAGE];

/* libbsd's generator defines helpers some files do not use. */
#define __unused __attribute__((unused))
RB_GENERATE(dedup_stable, dedup_node, link, stable_cmp)
RB_GENERATE(dedup_unstable, dedup_rmap, link, unstable_cmp)
#undef __unused

/* ---- knobs ------------------------------------------------------------------ */

void dedup__default_knobs(struct dedup_knobs *knobs)
{
#define DEDUP_KNOB_DEFAULT(name, def, min, max, help) knobs->name = def;
	DEDUP_KNOBS(DEDUP_KNOB_DEFAULT)
#undef DEDUP_KNOB_DEFAULT
}

static bool in_range(uint64_t v, uint64_t min, uint64_t max)
{
	return v >= min && v <= max;
}

int dedup__set_knob(struct dedup_knobs *knobs, const char *name, const char *value)
{
	unsigned long long v;
	char *end;

	if (!value[0] || value[0] == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(value, &end, 10);
	if (errno || *end)
		return errno == ERANGE ? -ERANGE : -EINVAL;
#define DEDUP_KNOB_SET(kname, def, min, max, help)                                                 \
	if (!strcmp(name, #kname)) {                                                               \
		if (!in_range(v, min, max))                                                        \
			return -ERANGE;                                                            \
		knobs->kname = v;                                                                  \
		return 0;                                                                          \
	}
	DEDUP_KNOBS(DEDUP_KNOB_SET)
#undef DEDUP_KNOB_SET
	return -ENOENT;
}

int dedup__set_run(struct dedup *d, uint64_t run)
{
	if (run > 2)
		return -ERANGE;
	pthread_mutex_lock(&d->wait_lock);
	__atomic_store_n(&d->knobs.run, run, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&d->wake);
	pthread_mutex_unlock(&d->wait_lock);
	return 0;
}

const char *dedup__mode_name(enum dedup_mode mode)
{
	return mode == DEDUP_ON ? "on" : mode == DEDUP_ZERO ? "zero" : "off";
}

/* ---- mappings of the process ------------------------------------------------- */

/*
 * Lines of /proc/self/maps: the mappings this process holds now; 0 when it
 * cannot be read. Through an fd opened at init and read from offset 0 each
 * time: no file is opened once the VM runs (the seccomp filter allows none).
 */
uint64_t dedup__count_maps(const struct dedup *d)
{
	char buf[8192];
	uint64_t n = 0;
	off_t off = 0;
	ssize_t r;

	if (d->maps_fd < 0)
		return 0;
	while ((r = pread(d->maps_fd, buf, sizeof(buf), off)) > 0) {
		for (ssize_t i = 0; i < r; i++)
			n += buf[i] == '\n';
		off += r;
	}
	return n;
}

static uint64_t dedup_max_map_count(void)
{
	char buf[32] = "";
	int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
	ssize_t r = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	unsigned long long v = r > 0 ? strtoull(buf, NULL, 10) : 0;

	if (fd >= 0)
		close(fd);
	return v ? v : 65530; /* the kernel's default */
}

static void dedup_set_map_limit(struct dedup *d)
{
	uint64_t max = dedup_max_map_count(), reserve = max / 8;

	if (reserve < DEDUP_MAP_RESERVE_MIN)
		reserve = DEDUP_MAP_RESERVE_MIN;
	d->map_limit = d->knobs.map_limit ? d->knobs.map_limit : max > reserve ? max - reserve : 0;
}

/* Whether @n more merges fit under the mapping limit; counts a skip otherwise. */
bool dedup__maps_allow(struct dedup *d, uint64_t n)
{
	if (d->maps + n * DEDUP_MAPS_PER_MERGE <= d->map_limit)
		return true;
	D_STAT_INC(d, merges_skipped_map_limit);
	return false;
}

/* ---- shared pages -------------------------------------------------------------- */

/*
 * Take @want slots of the stable memfd in a row, the lowest there are, or
 * failing that one slot, the lowest free. Lock held. How many were taken
 * from *@slot on: @want, 1, or 0 when every slot is used.
 */
uint64_t dedup__slots_take(struct dedup *d, uint64_t want, uint64_t *slot)
{
	uint64_t nr = d->mmu->nr_pages, first_free = nr, start = 0, run = 0, i;

	for (i = d->slot_hint; i < nr && run < want; i++) {
		if (i % BITS_PER_LONG == 0 && i + BITS_PER_LONG <= nr &&
		    __atomic_load_n(&d->slots[i / BITS_PER_LONG], __ATOMIC_RELAXED) == ~0UL) {
			i += BITS_PER_LONG - 1; /* a word of used slots */
			run = 0;
			continue;
		}
		if (bit_test(d->slots, i)) {
			run = 0;
			continue;
		}
		if (first_free == nr)
			first_free = i;
		if (!run++)
			start = i;
	}
	d->slot_hint = first_free; /* every slot below it is used */
	if (run < want) {
		if (first_free == nr)
			return 0;
		start = first_free;
		run = 1;
	}
	for (i = start; i < start + run; i++)
		bit_set(d->slots, i);
	if (start == first_free)
		d->slot_hint = start + run;
	*slot = start;
	return run;
}

/* Slot @slot of the stable memfd is free again. Lock held. */
void dedup__slot_put(struct dedup *d, uint64_t slot)
{
	bit_test_clear(d->slots, slot);
	if (slot < d->slot_hint)
		d->slot_hint = slot;
}

void dedup__update_sharing(struct dedup *d)
{
	D_STAT_SET(d, pages_sharing, d->refs_committed - D_STAT(d, pages_shared));
}

/*
 * Drop one reference to @node; the last frees its page, uncharging it
 * unless @keep_charge (a copy-on-write break that took the charge over).
 * Lock held.
 */
void dedup__node_put(struct dedup *d, struct dedup_node *node, bool keep_charge)
{
	if (--node->refs)
		return;
	if (node->in_tree) {
		RB_REMOVE(dedup_stable, &d->stable_tree, node);
		D_STAT_ADD(d, pages_shared, -1);
		dedup__update_sharing(d);
	}
	if (punch_pages(d->stable_fd, node->slot, 1) < 0) {
		/* the page stays allocated in the memfd until the VM ends */
	}
	if (node->charged && !keep_charge)
		mmu__uncharge(d->mmu, 1);
	dedup__slot_put(d, node->slot);
	free(node);
}

/* A shared page with @page's contents and room for one more sharer. Lock held. */
struct dedup_node *dedup__stable_find(struct dedup *d, uint64_t checksum, const uint8_t *page)
{
	struct dedup_node key = {.checksum = checksum, .slot = 0}, *n;
	uint64_t max = knob(d, &d->knobs.max_page_sharing);

	for (n = RB_NFIND(dedup_stable, &d->stable_tree, &key); n && n->checksum == checksum;
	     n = RB_NEXT(dedup_stable, &d->stable_tree, n))
		if (n->refs < max && !memcmp(stable_page(d, n), page, PAGE))
			return n;
	return NULL;
}

/* ---- page state ---------------------------------------------------------------- */

/* Whether the scanner may look at page @pi. Lock held. */
bool dedup__candidate(const struct dedup *d, uint64_t pi)
{
	return page_bits__mergeable(&d->mmu->bits, pi);
}

/* Write-protect page @pi of the guest view (@on), or lift it (which wakes writers). */
static int dedup_protect(struct dedup *d, uint64_t pi, bool on)
{
	struct uffdio_writeprotect wp = {
		.range = {.start = (uint64_t)(uintptr_t)guest_page(d, pi), .len = PAGE},
		.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(d->mmu->uffd, UFFDIO_WRITEPROTECT, &wp) < 0 ? -errno : 0;
}

/*
 * Pages of a file-backed VM that nobody wrote are write-protected for
 * reclaim already; the scanner leaves their protection as it finds it.
 */
bool dedup__was_protected(const struct dedup *d, uint64_t pi)
{
	return d->mmu->wp && !bit_test(d->mmu->bits.dirty, pi);
}

void dedup__unprotect(struct dedup *d, uint64_t pi, bool was_protected)
{
	if (!was_protected && dedup_protect(d, pi, false)) {
		/* the page stays protected: its next write is a fault that lifts it */
	}
}

static void dedup_wake_uffd(int uffd, uint8_t *page)
{
	struct uffdio_range r = {.start = (uint64_t)(uintptr_t)page, .len = PAGE};

	if (ioctl(uffd, UFFDIO_WAKE, &r) < 0) {
		/* nobody waits */
	}
}

void dedup__wake(struct dedup *d, uint64_t pi)
{
	dedup_wake_uffd(d->uffd, guest_page(d, pi));
	dedup_wake_uffd(d->mmu->uffd, guest_page(d, pi));
}

/*
 * The merge of @pi is over (either way): it stops being busy, and the
 * writers left pending meanwhile are woken; they go on, or fault again on
 * what the page is now. Nobody else waits on a busy page's userfaultfds,
 * so a merge nobody wrote to during makes no wake-up calls. Lock held.
 */
void dedup__unbusy(struct dedup *d, uint64_t pi)
{
	if (page_bits__unbusy(&d->mmu->bits, pi))
		dedup__wake(d, pi);
}

/* ---- set-up ---------------------------------------------------------------------------- */

static int dedup_fail(const char *what, int err)
{
	pr_err("cannot set up dedup: %s failed: %s", what, strerror(err));
	return -err;
}

static int dedup_init_uffd(struct dedup *d)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_EVENT_REMAP |
			    UFFD_FEATURE_THREAD_ID,
	};
	int err = inject__check("userfaultfd.dedup");

	d->uffd = err ? -1 : (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (d->uffd < 0)
		return dedup_fail("userfaultfd", err ? err : errno);
	if (ioctl(d->uffd, UFFDIO_API, &api) < 0)
		return dedup_fail("UFFDIO_API (write-protect of shared memory needs Linux 5.19)",
				  errno);
	return 0;
}

static int dedup_init_state(struct dedup *d)
{
	uint64_t words = bitmap_words(d->mmu->nr_pages), i;

	d->rmap = calloc(d->mmu->nr_pages, sizeof(*d->rmap));
	d->slots = calloc(words, sizeof(unsigned long));
	if (!d->rmap || !d->slots)
		return dedup_fail("allocation of the page state", ENOMEM);
	for (i = 0; i < d->mmu->nr_pages; i++)
		d->rmap[i].pi = i;
	return 0;
}

/* What mmu.c calls, and all it knows of dedup (mmu.h). */
static const struct mmu_sharer_ops dedup_sharer_ops = {
	.break_cow = dedup__break_cow,
	.discard = dedup__discard,
	.wake = dedup__wake,
};

int dedup__init(struct dedup *d, struct mmu *mmu, enum dedup_mode mode,
		const struct dedup_knobs *knobs)
{
	pthread_condattr_t attr;
	int ret;

	memset(d, 0, sizeof(*d));
	d->mmu = mmu;
	d->mode = mode;
	d->uffd = d->stable_fd = d->stop_fd = d->maps_fd = -1;
	d->seq = 1;
	RB_INIT(&d->stable_tree);
	RB_INIT(&d->unstable_tree);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* dedup__sleep()'s deadline */
	pthread_cond_init(&d->wake, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&d->wait_lock, NULL);
	if (knobs)
		d->knobs = *knobs;
	else
		dedup__default_knobs(&d->knobs);
	if (!mmu->uffd_wp)
		return dedup_fail("write-protect of guest RAM", EOPNOTSUPP);
	ret = dedup_init_state(d);
	ret = ret ?: dedup_init_uffd(d);
	if (ret)
		return ret;
	d->stable_fd = memfd_create("faultline-dedup", MFD_CLOEXEC);
	if (d->stable_fd < 0)
		return dedup_fail("memfd_create", errno);
	if (ftruncate(d->stable_fd, (off_t)mmu->ram.size) < 0)
		return dedup_fail("ftruncate of the shared-page memfd", errno);
	d->stable = mmap(NULL, mmu->ram.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			 d->stable_fd, 0);
	if (d->stable == MAP_FAILED) {
		d->stable = NULL;
		return dedup_fail("mmap of the shared-page memfd", errno);
	}
	d->stop_fd = inject__fail("eventfd.dedup") ?: eventfd(0, EFD_CLOEXEC);
	if (d->stop_fd < 0)
		return dedup_fail("eventfd", errno);
	d->zero_checksum = XXH3_64bits(dedup_zero_page, PAGE);
	d->maps_fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	d->maps = dedup__count_maps(d);
	dedup_set_map_limit(d);
	mmu->sharer = &dedup_sharer_ops;
	mmu->dedup = d;
	return 0;
}

void dedup__exit(struct dedup *d)
{
	struct dedup_node *n, *next;

	dedup__stop(d);
	if (d->mmu && d->mmu->dedup == d)
		d->mmu->dedup = NULL;
	RB_FOREACH_SAFE(n, dedup_stable, &d->stable_tree, next)
	{
		RB_REMOVE(dedup_stable, &d->stable_tree, n);
		free(n);
	}
	if (d->stable)
		munmap(d->stable, d->mmu->ram.size);
	if (d->stable_fd >= 0)
		close(d->stable_fd);
	if (d->maps_fd >= 0)
		close(d->maps_fd);
	if (d->uffd >= 0)
		close(d->uffd);
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	free(d->rmap);
	free(d->slots);
	memset(d, 0, sizeof(*d));
	d->uffd = d->stable_fd = d->stop_fd = d->maps_fd = -1;
}

/* ---- counters ----------------------------------------------------------------------- */

uint64_t dedup__counter(struct dedup *d, unsigned index)
{
	unsigned i = 0;

#define DEDUP_COUNTER_AT(name, help)                                                               \
	if (i++ == index)                                                                          \
		return D_STAT(d, name);
	DEDUP_COUNTERS(DEDUP_COUNTER_AT)
#undef DEDUP_COUNTER_AT
	return ~0ULL;
}

int dedup__shared_bytes(const struct dedup *d, uint64_t *bytes)
{
	struct stat st;

	if (fstat(d->stable_fd, &st) < 0)
		return -errno;
	*bytes = (uint64_t)st.st_blocks * 512;
	return 0;
}

void dedup__print_text(struct dedup *d, FILE *out)
{
	fprintf(out, "dedup (%s, run=%llu):\n", dedup__mode_name(d->mode),
		(unsigned long long)knob(d, &d->knobs.run));
#define DEDUP_COUNTER_TEXT(name, help)                                                             \
	fprintf(out, "  %-24s %12llu  %s\n", #name, (unsigned long long)D_STAT(d, name), help);
	DEDUP_COUNTERS(DEDUP_COUNTER_TEXT)
#undef DEDUP_COUNTER_TEXT
}

json_t *dedup__json(struct dedup *d)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "mode", json_string(dedup__mode_name(d->mode)));
	json_object_set_new(o, "run", json_integer((json_int_t)knob(d, &d->knobs.run)));
#define DEDUP_COUNTER_JSON(name, help)                                                             \
	json_object_set_new(o, #name, json_integer((json_int_t)D_STAT(d, name)));
	DEDUP_COUNTERS(DEDUP_COUNTER_JSON)
#undef DEDUP_COUNTER_JSON
	return o;
}
