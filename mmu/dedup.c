/*
 * The dedup engine: scanner, indexes, merge, copy-on-write break, unmerge.
 * The overview and the locking rules are in mmu/dedup.h.
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
#include "mmu/mmu.h"
#include "mmu/uffd_compat.h"

#define PAGE		      MMU_PAGE_SIZE
#define DEDUP_MAP_RESERVE_MIN 512ULL /* mappings left to the rest of the process */
#define DEDUP_MAPS_PER_MERGE  2ULL   /* a page mapped into the guest view splits it in three */

#define D_STAT_SET(d, name, v) __atomic_store_n(&(d)->stats.name, (v), __ATOMIC_RELAXED)
#define D_STAT_ADD(d, name, n) __atomic_add_fetch(&(d)->stats.name, (n), __ATOMIC_RELAXED)
#define D_STAT_INC(d, name)    D_STAT_ADD(d, name, 1)
#define D_STAT(d, name)	       __atomic_load_n(&(d)->stats.name, __ATOMIC_RELAXED)

static const uint8_t zero_page[PAGE];

static int stable_cmp(const struct dedup_node *a, const struct dedup_node *b)
{
	if (a->checksum != b->checksum)
		return a->checksum < b->checksum ? -1 : 1;
	return a->slot < b->slot ? -1 : a->slot > b->slot;
}

static int unstable_cmp(const struct dedup_rmap *a, const struct dedup_rmap *b)
{
	if (a->checksum != b->checksum)
		return a->checksum < b->checksum ? -1 : 1;
	return a->pi < b->pi ? -1 : a->pi > b->pi;
}

/* libbsd's generator defines helpers some files do not use. */
#define __unused __attribute__((unused))
RB_GENERATE_STATIC(dedup_stable, dedup_node, link, stable_cmp)
RB_GENERATE_STATIC(dedup_unstable, dedup_rmap, link, unstable_cmp)
#undef __unused

static uint8_t *guest_page(const struct dedup *d, uint64_t pi)
{
	return d->mmu->ram.host + pi * PAGE;
}

static uint8_t *alias_page(const struct dedup *d, uint64_t pi)
{
	return d->mmu->alias + pi * PAGE;
}

static uint8_t *stable_page(const struct dedup *d, const struct dedup_node *node)
{
	return d->stable + node->slot * PAGE;
}

/* Free pages [@first, @first + @n) of memfd @fd (every view loses them). 0 or -errno. */
static int punch_pages(int fd, uint64_t first, uint64_t n)
{
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(first * PAGE),
			 (off_t)(n * PAGE)) < 0
		       ? -errno
		       : 0;
}

static uint64_t knob(const struct dedup *d, const uint64_t *field)
{
	(void)d;
	return __atomic_load_n(field, __ATOMIC_RELAXED);
}

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
static uint64_t dedup__count_maps(const struct dedup *d)
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

static uint64_t dedup__max_map_count(void)
{
	char buf[32] = "";
	int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
	ssize_t r = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	unsigned long long v = r > 0 ? strtoull(buf, NULL, 10) : 0;

	if (fd >= 0)
		close(fd);
	return v ? v : 65530; /* the kernel's default */
}

static void dedup__set_map_limit(struct dedup *d)
{
	uint64_t max = dedup__max_map_count(), reserve = max / 8;

	if (reserve < DEDUP_MAP_RESERVE_MIN)
		reserve = DEDUP_MAP_RESERVE_MIN;
	d->map_limit = d->knobs.map_limit ? d->knobs.map_limit : max > reserve ? max - reserve : 0;
}

/* Whether @n more merges fit under the mapping limit; counts a skip otherwise. */
static bool dedup__maps_allow(struct dedup *d, uint64_t n)
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
static uint64_t dedup__slots_take(struct dedup *d, uint64_t want, uint64_t *slot)
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
static void dedup__slot_put(struct dedup *d, uint64_t slot)
{
	bit_test_clear(d->slots, slot);
	if (slot < d->slot_hint)
		d->slot_hint = slot;
}

static void dedup__update_sharing(struct dedup *d)
{
	D_STAT_SET(d, pages_sharing, d->refs_committed - D_STAT(d, pages_shared));
}

/*
 * Drop one reference to @node; the last frees its page, uncharging it
 * unless @keep_charge (a copy-on-write break that took the charge over).
 * Lock held.
 */
static void dedup__node_put(struct dedup *d, struct dedup_node *node, bool keep_charge)
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
static struct dedup_node *dedup__stable_find(struct dedup *d, uint64_t checksum,
					     const uint8_t *page)
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

bool dedup__page_busy(const struct dedup *d, uint64_t pi)
{
	return bit_test(d->busy, pi);
}

bool dedup__page_merged(const struct dedup *d, uint64_t pi)
{
	return bit_test(d->merged, pi);
}

void dedup__wait_idle(struct dedup *d, uint64_t pi)
{
	while (bit_test(d->busy, pi))
		pthread_cond_wait(&d->idle, &d->mmu->reclaim_lock);
}

void dedup__park(struct dedup *d, uint64_t pi)
{
	bit_set(d->waiting, pi);
}

void dedup__pin(struct dedup *d, uint64_t pi)
{
	bit_set(d->nomerge, pi);
}

/* Whether the scanner may look at page @pi. Lock held. */
static bool dedup__candidate(const struct dedup *d, uint64_t pi)
{
	const struct mmu *mmu = d->mmu;

	return bit_test(mmu->resident, pi) && !bit_test(mmu->poisoned, pi) &&
	       !bit_test(d->merged, pi) && !bit_test(d->busy, pi) && !bit_test(d->nomerge, pi);
}

/* Write-protect page @pi of the guest view (@on), or lift it (which wakes writers). */
static int dedup__protect(struct dedup *d, uint64_t pi, bool on)
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
static bool dedup__was_protected(const struct dedup *d, uint64_t pi)
{
	return d->mmu->wp && !bit_test(d->mmu->dirty, pi);
}

static void dedup__unprotect(struct dedup *d, uint64_t pi, bool was_protected)
{
	if (!was_protected && dedup__protect(d, pi, false)) {
		/* the page stays protected: its next write is a fault that lifts it */
	}
}

static void dedup__wake_uffd(int uffd, uint8_t *page)
{
	struct uffdio_range r = {.start = (uint64_t)(uintptr_t)page, .len = PAGE};

	if (ioctl(uffd, UFFDIO_WAKE, &r) < 0) {
		/* nobody waits */
	}
}

void dedup__wake(struct dedup *d, uint64_t pi)
{
	dedup__wake_uffd(d->uffd, guest_page(d, pi));
	dedup__wake_uffd(d->mmu->uffd, guest_page(d, pi));
}

/*
 * The merge of @pi is over (either way): it stops being busy, and the
 * writers left pending meanwhile are woken; they go on, or fault again on
 * what the page is now. Nobody else waits on a busy page's userfaultfds,
 * so a merge nobody wrote to during makes no wake-up calls. Lock held.
 */
static void dedup__unbusy(struct dedup *d, uint64_t pi)
{
	bit_test_clear(d->busy, pi);
	pthread_cond_broadcast(&d->idle);
	if (bit_test_clear(d->waiting, pi))
		dedup__wake(d, pi);
}

/* ---- merging -------------------------------------------------------------------- */

/*
 * Put the @n shared pages from @slot on at guest pages @pi on: a mapping of
 * the stable memfd, registered with the dedup userfaultfd and
 * write-protected before mremap() moves it over the guest view, so no vCPU
 * ever sees it writable. Lock not held (mremap waits for the dedup reader
 * to read its event).
 */
static int dedup__map_shared(struct dedup *d, uint64_t pi, uint64_t n, uint64_t slot)
{
	struct uffdio_register reg = {.mode = UFFDIO_REGISTER_MODE_WP};
	struct uffdio_writeprotect wp = {.mode = UFFDIO_WRITEPROTECT_MODE_WP};
	int err = inject__check("dedup.map");
	uint8_t *st;

	if (err)
		return -err;
	/* populated: write-protection then protects present entries, not markers */
	st = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, d->stable_fd,
		  (off_t)(slot * PAGE));
	if (st == MAP_FAILED)
		return -errno;
	reg.range = (struct uffdio_range){(uint64_t)(uintptr_t)st, n * PAGE};
	wp.range = reg.range;
	if (ioctl(d->uffd, UFFDIO_REGISTER, &reg) < 0)
		goto fail;
	if (ioctl(d->uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
		goto fail;
	if (mremap(st, n * PAGE, n * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, guest_page(d, pi)) ==
	    MAP_FAILED)
		goto fail;
	return 0;
fail:
	err = errno;
	munmap(st, n * PAGE);
	return -err;
}

/*
 * Busy pages [@pi, @pi + @n) map @nodes now: their own memory goes with one
 * punch, and they are merged. Lock held.
 */
static void dedup__merged(struct dedup *d, uint64_t pi, uint64_t n, struct dedup_node **nodes)
{
	struct mmu *mmu = d->mmu;
	uint64_t i;
	int ret;

	ret = punch_pages(mmu->memfd, pi, n);
	if (ret < 0)
		D_STAT_ADD(d, merge_errors, n); /* the pages stay charged until their COW breaks */
	for (i = 0; i < n; i++) {
		struct dedup_node *node = nodes[i];

		if (ret >= 0 && node->charged)
			mmu__uncharge(mmu, 1);
		node->charged = true;	     /* the first page's charge is the shared page's now */
		bit_set(mmu->dirty, pi + i); /* never reclaimed as a clean file page */
		bit_set(d->merged, pi + i);
		d->rmap[pi + i].node = node;
		d->maps += DEDUP_MAPS_PER_MERGE;
		if (!node->in_tree) {
			RB_INSERT(dedup_stable, &d->stable_tree, node);
			node->in_tree = true;
			D_STAT_INC(d, pages_shared);
		}
		d->refs_committed++;
	}
}

/*
 * Merge busy, protected pages [@pi, @pi + @n) into @nodes, which hold a
 * reference for each: each stretch of them whose shared pages are in a row
 * of the memfd is mapped over with one mapping, then each stretch of pages
 * mapped loses its own memory with one punch. Lock held on entry and exit,
 * dropped around the mapping changes. @ret: each page's result, 0 or
 * -errno (its reference dropped, the page as it was).
 */
static void dedup__merge_into(struct dedup *d, uint64_t pi, uint64_t n, struct dedup_node **nodes,
			      int *ret)
{
	struct mmu *mmu = d->mmu;
	uint64_t a, b, i;
	int err;

	pthread_mutex_unlock(&mmu->reclaim_lock);
	for (a = 0; a < n; a = b) {
		for (b = a + 1; b < n && nodes[b]->slot == nodes[a]->slot + (b - a); b++)
			;
		err = dedup__map_shared(d, pi + a, b - a, nodes[a]->slot);
		if (err)
			D_STAT_INC(d, merge_errors);
		for (i = a; i < b; i++)
			ret[i] = err;
	}
	pthread_mutex_lock(&mmu->reclaim_lock);
	for (a = 0; a < n; a = b) {
		for (b = a + 1; b < n && !ret[b] == !ret[a]; b++)
			;
		if (!ret[a]) {
			dedup__merged(d, pi + a, b - a, nodes + a);
			continue;
		}
		for (i = a; i < b; i++)
			dedup__node_put(d, nodes[i], false);
	}
	dedup__update_sharing(d);
}

/* End the merge of @pi: failed ones get their protection back as it was. Lock held. */
static void dedup__merge_end(struct dedup *d, uint64_t pi, bool was_protected, int ret)
{
	if (ret)
		dedup__unprotect(d, pi, was_protected);
	dedup__unbusy(d, pi);
}

/* Write-protect pages [@first, @first + @n) of the guest view in one call. */
static int dedup__protect_range(struct dedup *d, uint64_t first, uint64_t n, const char *site)
{
	struct uffdio_writeprotect wp = {
		.range = {.start = (uint64_t)(uintptr_t)guest_page(d, first), .len = n * PAGE},
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	int err = inject__check(site);

	if (err)
		return -err;
	return ioctl(d->mmu->uffd, UFFDIO_WRITEPROTECT, &wp) < 0 ? -errno : 0;
}

/*
 * Merge candidates [@pi, @pi + @n) into @nodes, which hold a reference
 * for each: they are write-protected with one call and compared again now
 * that they cannot change; each stretch still equal is merged (one mapping
 * per stretch of shared pages in a row, one punch). A page written since is
 * left as it was. @was: each page's protection before. Lock held on entry
 * and exit.
 */
static void dedup__merge_stretch(struct dedup *d, uint64_t pi, uint64_t n,
				 struct dedup_node **nodes, const bool *was)
{
	bool same[DEDUP_MERGE_RUN_MAX];
	int ret[DEDUP_MERGE_RUN_MAX];
	uint64_t a, b, i;

	if (!dedup__maps_allow(d, n)) {
		for (i = 0; i < n; i++)
			dedup__node_put(d, nodes[i], false);
		return;
	}
	if (dedup__protect_range(d, pi, n, "dedup.protect")) {
		D_STAT_ADD(d, merge_errors, n);
		for (i = 0; i < n; i++) {
			dedup__unprotect(d, pi + i, was[i]);
			dedup__node_put(d, nodes[i], false);
		}
		return;
	}
	for (i = 0; i < n; i++) {
		same[i] = !memcmp(alias_page(d, pi + i), stable_page(d, nodes[i]), PAGE);
		if (same[i]) {
			bit_set(d->busy, pi + i);
			continue;
		}
		dedup__unprotect(d, pi + i, was[i]);
		dedup__node_put(d, nodes[i], false);
	}
	for (a = 0; a < n; a = b) {
		for (b = a; b < n && same[b] == same[a]; b++)
			;
		if (!same[a])
			continue;
		dedup__merge_into(d, pi + a, b - a, nodes + a, ret + a);
		for (i = a; i < b; i++)
			dedup__merge_end(d, pi + i, was[i], ret[i]);
	}
}

/*
 * Merge the pending run: of its pages, the ones still candidates, a
 * stretch at a time. The others drop their references. Lock held.
 */
static void dedup__merge_run(struct dedup *d)
{
	uint64_t first = d->run_first, n = d->run_n, a = 0, b;
	bool was[DEDUP_MERGE_RUN_MAX];

	d->run_n = 0;
	while (a < n) {
		if (!dedup__candidate(d, first + a)) {
			dedup__node_put(d, d->run_nodes[a++], false);
			continue;
		}
		for (b = a; b < n && dedup__candidate(d, first + b); b++)
			was[b] = dedup__was_protected(d, first + b);
		dedup__merge_stretch(d, first + a, b - a, d->run_nodes + a, was + a);
		a = b;
	}
}

/*
 * Candidate @pi merges into the shared page @node: it joins the pending
 * run, which is merged first unless @pi continues it. The reference is
 * taken first, since merging drops the lock. Lock held.
 */
static void dedup__add_merge(struct dedup *d, uint64_t pi, struct dedup_node *node)
{
	node->refs++;
	if (d->run_n && (pi != d->run_first + d->run_n || d->run_n == DEDUP_MERGE_RUN_MAX))
		dedup__merge_run(d);
	if (!d->run_n)
		d->run_first = pi;
	d->run_nodes[d->run_n++] = node;
}

/*
 * New shared pages in a row of the memfd holding copies of the @n pages
 * from @src on, with checksums @sums: @n if so many free slots are in a
 * row, else one. Not charged: the first guest page merged into each hands
 * its own charge over (so merging works with a full budget). Lock held.
 * How many were made (in @nodes); 0 when none could be.
 */
static uint64_t dedup__nodes_new(struct dedup *d, const uint8_t *src, uint64_t n,
				 const uint64_t *sums, struct dedup_node **nodes)
{
	uint64_t slot = 0, i, made = 0;
	int err = inject__check("dedup.node");

	n = err ? 0 : dedup__slots_take(d, n, &slot);
	if (!n)
		goto fail;
	if (pwrite(d->stable_fd, src, n * PAGE, (off_t)(slot * PAGE)) != (ssize_t)(n * PAGE))
		goto fail_slots;
	for (made = 0; made < n; made++) {
		nodes[made] = calloc(1, sizeof(*nodes[made]));
		if (!nodes[made])
			goto fail_nodes;
		nodes[made]->slot = slot + made;
		nodes[made]->checksum = sums[made];
	}
	return n;

fail_nodes:
	while (made)
		free(nodes[--made]);
fail_slots:
	for (i = 0; i < n; i++)
		dedup__slot_put(d, slot + i);
fail:
	D_STAT_INC(d, merge_errors);
	return 0;
}

/*
 * Busy, protected pairs [@a, @a + @n) and [@b, @b + @n), page for page
 * equal, become new shared pages in a row, as many as can be had at a
 * time, each stretch merged with one mapping on either side; the merges
 * end (@was_a, @was_b: each page's protection before). Lock held.
 */
static void dedup__merge_equal_pairs(struct dedup *d, uint64_t a, uint64_t b, uint64_t n,
				     const uint64_t *sums, const bool *was_a, const bool *was_b)
{
	struct dedup_node *nodes[DEDUP_MERGE_RUN_MAX];
	int ra[DEDUP_MERGE_RUN_MAX], rb[DEDUP_MERGE_RUN_MAX];
	uint64_t i, j, k;

	for (i = 0; i < n; i += k) {
		k = dedup__nodes_new(d, alias_page(d, a + i), n - i, sums + i, nodes);
		if (k) {
			for (j = 0; j < k; j++)
				nodes[j]->refs = 2;
			dedup__merge_into(d, a + i, k, nodes, ra + i);
			dedup__merge_into(d, b + i, k, nodes, rb + i);
		} else {
			k = n - i; /* no shared page: the rest stays as it was */
			for (j = i; j < n; j++)
				ra[j] = rb[j] = -ENOMEM;
		}
		for (j = i; j < i + k; j++) {
			dedup__merge_end(d, a + j, was_a[j], ra[j]);
			dedup__merge_end(d, b + j, was_b[j], rb[j]);
		}
	}
}

/*
 * Make shared pages of pairs [@a, @a + @n) and [@b, @b + @n), candidates
 * page for page equal: both stretches are write-protected (a call each)
 * and compared again now that they cannot change; the pairs still equal
 * become new shared pages in a row, as many as can be had, and each
 * stretch of them is merged with one mapping on either side. @sums: the
 * pairs' checksums. Lock held on entry and exit.
 */
static void dedup__merge_pair_stretch(struct dedup *d, uint64_t a, uint64_t b, uint64_t n,
				      const uint64_t *sums)
{
	bool was_a[DEDUP_MERGE_RUN_MAX], was_b[DEDUP_MERGE_RUN_MAX], same[DEDUP_MERGE_RUN_MAX];
	uint64_t i, s, e;

	for (i = 0; i < n; i++) {
		was_a[i] = dedup__was_protected(d, a + i);
		was_b[i] = dedup__was_protected(d, b + i);
	}
	if (!dedup__maps_allow(d, 2 * n))
		return;
	if (dedup__protect_range(d, a, n, "dedup.protect") ||
	    dedup__protect_range(d, b, n, "dedup.protect")) {
		D_STAT_ADD(d, merge_errors, n);
		for (i = 0; i < n; i++) {
			dedup__unprotect(d, a + i, was_a[i]);
			dedup__unprotect(d, b + i, was_b[i]);
		}
		return;
	}
	for (i = 0; i < n; i++) {
		same[i] = !memcmp(alias_page(d, a + i), alias_page(d, b + i), PAGE);
		if (same[i]) {
			bit_set(d->busy, a + i);
			bit_set(d->busy, b + i);
			continue;
		}
		dedup__unprotect(d, a + i, was_a[i]);
		dedup__unprotect(d, b + i, was_b[i]);
	}
	for (s = 0; s < n; s = e) {
		for (e = s; e < n && same[e] == same[s]; e++)
			;
		if (same[s])
			dedup__merge_equal_pairs(d, a + s, b + s, e - s, sums + s, was_a + s,
						 was_b + s);
	}
}

/*
 * Merge the pending pairs: a stretch at a time of those whose pages are
 * both still candidates. Lock held.
 */
static void dedup__merge_pairs(struct dedup *d)
{
	uint64_t n = d->pair_n, s = 0, e;

	d->pair_n = 0;
	while (s < n) {
		for (e = s; e < n && dedup__candidate(d, d->pair_a + e) &&
			    dedup__candidate(d, d->pair_b + e);
		     e++)
			;
		if (e > s)
			dedup__merge_pair_stretch(d, d->pair_a + s, d->pair_b + s, e - s,
						  d->pair_sums + s);
		s = e == s ? s + 1 : e;
	}
}

/*
 * Candidate @b (checksum @sum) and @a, from this pass's unstable index,
 * hold the same bytes: the pair joins the pending pairs (@a leaves the
 * index). Lock held.
 */
static void dedup__add_pair(struct dedup *d, uint64_t a, uint64_t b, uint64_t sum)
{
	RB_REMOVE(dedup_unstable, &d->unstable_tree, &d->rmap[a]);
	d->rmap[a].seq = 0;
	D_STAT_ADD(d, pages_unshared, -1);
	if (!d->pair_n) {
		d->pair_a = a;
		d->pair_b = b;
	}
	d->pair_sums[d->pair_n++] = sum;
}

/*
 * Whether candidate @pi (checksum @sum) continues the pending pairs: it
 * follows their second pages, and the page after their first pages, in
 * this pass's unstable index, holds the same bytes, which no shared page
 * holds. Lock held.
 */
static bool dedup__continues_pairs(struct dedup *d, uint64_t pi, uint64_t sum)
{
	uint64_t a = d->pair_a + d->pair_n;

	return pi == d->pair_b + d->pair_n && d->pair_n < DEDUP_MERGE_RUN_MAX && a < pi &&
	       d->rmap[a].seq == d->seq && d->rmap[a].checksum == sum && dedup__candidate(d, a) &&
	       !memcmp(alias_page(d, a), alias_page(d, pi), PAGE) &&
	       !dedup__stable_find(d, sum, alias_page(d, pi));
}

/*
 * An equal page from this pass's unstable index, not @pi itself; stale
 * entries met on the way are dropped. Lock held.
 */
static struct dedup_rmap *dedup__unstable_find(struct dedup *d, uint64_t checksum, uint64_t pi)
{
	struct dedup_rmap key = {.checksum = checksum, .pi = 0}, *r, *next;

	for (r = RB_NFIND(dedup_unstable, &d->unstable_tree, &key); r && r->checksum == checksum;
	     r = next) {
		next = RB_NEXT(dedup_unstable, &d->unstable_tree, r);
		if (r->pi == pi)
			continue;
		if (!dedup__candidate(d, r->pi)) {
			RB_REMOVE(dedup_unstable, &d->unstable_tree, r);
			r->seq = 0;
			D_STAT_ADD(d, pages_unshared, -1);
			continue;
		}
		if (!memcmp(alias_page(d, r->pi), alias_page(d, pi), PAGE))
			return r;
	}
	return NULL;
}

/* ---- the scan -------------------------------------------------------------------- */

/*
 * The checksum gate: true when page @pi kept its checksum since the last
 * pass. Updates the checksum and the volatile count. Lock held.
 */
static bool dedup__checksum_gate(struct dedup *d, struct dedup_rmap *r, uint64_t sum)
{
	bool same = r->checksummed && r->checksum == sum;

	if (same && r->is_volatile) {
		r->is_volatile = false;
		D_STAT_ADD(d, pages_volatile, -1);
	} else if (!same && r->checksummed && !r->is_volatile) {
		r->is_volatile = true;
		D_STAT_INC(d, pages_volatile);
	}
	if (!same && r->seq == d->seq) {
		RB_REMOVE(dedup_unstable, &d->unstable_tree, r);
		r->seq = 0;
		D_STAT_ADD(d, pages_unshared, -1);
	}
	r->checksum = sum;
	r->checksummed = true;
	return same;
}

/*
 * Punch protected zero pages [@first, @first + @n) out of guest RAM and
 * uncharge them. They leave the resident bitmap before the punch, so that a
 * fault after it installs them again (and one before it that finds them
 * mapped wakes its waiter: mmu__fault_once()). A file-backed VM marks them
 * so that the file is not read for them. Lock held.
 */
static void dedup__punch_zeros(struct dedup *d, uint64_t first, uint64_t n, const bool *was)
{
	struct mmu *mmu = d->mmu;
	uint64_t i;

	if (!n)
		return;
	for (i = first; i < first + n; i++)
		bit_test_clear(mmu->resident, i);
	if (inject__check("dedup.zero_punch") || punch_pages(mmu->memfd, first, n) < 0) {
		for (i = first; i < first + n; i++) {
			bit_set(mmu->resident, i);
			dedup__unprotect(d, i, was[i - first]);
		}
		D_STAT_ADD(d, merge_errors, n);
		return;
	}
	for (i = first; i < first + n; i++) {
		if (mmu->wp)
			bit_set(mmu->zeroed, i);
		d->rmap[i].checksummed = false;
	}
	mmu__uncharge(mmu, n);
	D_STAT_ADD(d, zero_pages, n);
}

/*
 * Release the zero pages of the pending run, which the scanner found in a
 * row: the ones still candidates, a stretch of them at a time, are
 * write-protected with one call, checked again now that they cannot
 * change, and those still all zeros are punched out with one call per
 * stretch. A page written since is left as it was. Their next access is a
 * missing-page fault that installs zeros. Lock held.
 */
static void dedup__release_zeros(struct dedup *d)
{
	uint64_t end = d->zero_first + d->zero_n, a = d->zero_first, b, i, keep;
	bool was[DEDUP_ZERO_RUN_MAX];

	d->zero_n = 0;
	while (a < end) {
		if (!dedup__candidate(d, a)) {
			a++;
			continue;
		}
		for (b = a; b < end && dedup__candidate(d, b); b++)
			was[b - a] = dedup__was_protected(d, b);
		if (dedup__protect_range(d, a, b - a, "dedup.zero_protect")) {
			D_STAT_ADD(d, merge_errors, b - a);
			for (i = a; i < b; i++)
				dedup__unprotect(d, i, was[i - a]);
			a = b;
			continue;
		}
		/* Punch each stretch of pages still all zeros; give the others back. */
		for (i = keep = a; i < b; i++) {
			if (!memcmp(alias_page(d, i), zero_page, PAGE))
				continue;
			dedup__punch_zeros(d, keep, i - keep, was + (keep - a));
			dedup__unprotect(d, i, was[i - a]);
			keep = i + 1;
		}
		dedup__punch_zeros(d, keep, b - keep, was + (keep - a));
		a = b;
	}
}

/* Zero page @pi joins the pending run, which is released first unless @pi continues it. */
static void dedup__add_zero(struct dedup *d, uint64_t pi)
{
	if (d->zero_n && (pi != d->zero_first + d->zero_n || d->zero_n == DEDUP_ZERO_RUN_MAX))
		dedup__release_zeros(d);
	if (!d->zero_n)
		d->zero_first = pi;
	d->zero_n++;
}

static void dedup__scan_page(struct dedup *d, uint64_t pi)
{
	struct mmu *mmu = d->mmu;
	struct dedup_rmap *r = &d->rmap[pi], *peer;
	struct dedup_node *node;
	uint64_t sum;

	pthread_mutex_lock(&mmu->reclaim_lock);
	D_STAT_INC(d, pages_scanned);
	if (!dedup__candidate(d, pi))
		goto out;
	sum = XXH3_64bits(alias_page(d, pi), PAGE);
	if (!dedup__checksum_gate(d, r, sum))
		goto out;
	if (sum == d->zero_checksum && !memcmp(alias_page(d, pi), zero_page, PAGE)) {
		dedup__add_zero(d, pi);
		goto out;
	}
	if (d->mode != DEDUP_ON || r->seq == d->seq)
		goto out;
	if (d->pair_n && dedup__continues_pairs(d, pi, sum)) {
		dedup__add_pair(d, d->pair_a + d->pair_n, pi, sum);
		goto out;
	}
	/* Pending pairs are merged first: their shared pages may be this page's. */
	if (d->pair_n) {
		dedup__merge_pairs(d);
		if (!dedup__candidate(d, pi)) /* the lock was dropped */
			goto out;
	}
	node = dedup__stable_find(d, sum, alias_page(d, pi));
	if (node) {
		dedup__add_merge(d, pi, node);
		goto out;
	}
	peer = dedup__unstable_find(d, sum, pi);
	if (peer) {
		dedup__add_pair(d, peer->pi, pi, sum);
		goto out;
	}
	r->seq = d->seq;
	RB_INSERT(dedup_unstable, &d->unstable_tree, r);
	D_STAT_INC(d, pages_unshared);
out:
	pthread_mutex_unlock(&mmu->reclaim_lock);
}

/*
 * Release the pending zero pages, merge the pending pairs and run (all the
 * scanner's own): at the end of each batch and of each pass.
 */
static void dedup__flush(struct dedup *d)
{
	if (!d->zero_n && !d->run_n && !d->pair_n)
		return;
	pthread_mutex_lock(&d->mmu->reclaim_lock);
	if (d->zero_n)
		dedup__release_zeros(d);
	if (d->pair_n)
		dedup__merge_pairs(d);
	if (d->run_n)
		dedup__merge_run(d);
	pthread_mutex_unlock(&d->mmu->reclaim_lock);
}

/* A pass ended: the unstable index starts again, the mapping count is refreshed. */
static void dedup__pass_done(struct dedup *d)
{
	uint64_t maps = dedup__count_maps(d);

	pthread_mutex_lock(&d->mmu->reclaim_lock);
	d->seq++;
	RB_INIT(&d->unstable_tree);
	D_STAT_SET(d, pages_unshared, 0);
	if (maps)
		d->maps = maps;
	pthread_mutex_unlock(&d->mmu->reclaim_lock);
	D_STAT_INC(d, full_scans);
}

uint64_t dedup__scan(struct dedup *d, uint64_t nr)
{
	uint64_t n;

	for (n = 0; n < nr && !__atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE); n++) {
		dedup__scan_page(d, d->cursor);
		if (++d->cursor == d->mmu->nr_pages) {
			d->cursor = 0;
			dedup__flush(d);
			dedup__pass_done(d);
		}
	}
	dedup__flush(d);
	return n;
}

/* ---- copy-on-write break, discard, unmerge ---------------------------------------- */

/*
 * Guest page @pi maps its own page of guest RAM again (its contents
 * already there, or a hole), registered as the rest of the guest view.
 * Lock held. 0 or -errno.
 */
static int dedup__map_own(struct dedup *d, uint64_t pi)
{
	struct mmu *mmu = d->mmu;
	struct uffdio_register reg = {
		.range = {(uint64_t)(uintptr_t)guest_page(d, pi), PAGE},
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
	};

	/*
	 * The raw system call: a writer blocked on this page is woken only
	 * after it, which the kernel orders; ThreadSanitizer's mmap() would
	 * count the new mapping as a write it cannot order with the writer's.
	 */
	if ((void *)syscall(SYS_mmap, guest_page(d, pi), PAGE, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_FIXED | MAP_NORESERVE, mmu->memfd,
			    (off_t)(pi * PAGE)) == MAP_FAILED)
		return -errno;
	if (ioctl(mmu->uffd, UFFDIO_REGISTER, &reg) < 0) {
		/* Contents are right; only its faults are lost: never merge it again. */
		bit_set(d->nomerge, pi);
		D_STAT_INC(d, merge_errors);
	}
	return 0;
}

/* Merged page @pi no longer uses its shared page. Lock held. */
static void dedup__unshare(struct dedup *d, uint64_t pi, bool keep_charge)
{
	struct dedup_node *node = d->rmap[pi].node;

	bit_test_clear(d->merged, pi);
	d->rmap[pi].node = NULL;
	d->rmap[pi].checksummed = false;
	d->maps -= d->maps >= DEDUP_MAPS_PER_MERGE ? DEDUP_MAPS_PER_MERGE : d->maps;
	d->refs_committed--;
	dedup__update_sharing(d);
	dedup__node_put(d, node, keep_charge);
}

/* A break failed: dedup stops merging for this VM. Lock held. */
static fault_t dedup__break_failed(struct dedup *d, struct fault_ctx *ctx, int err)
{
	uint64_t was = 1;

	D_STAT_INC(d, cow_break_failures);
	ctx->flags |= FAULT_FLAG_COW;
	if (__atomic_compare_exchange_n(&d->knobs.run, &was, 0, false, __ATOMIC_ACQ_REL,
					__ATOMIC_RELAXED))
		pr_err("dedup: stopped merging: a copy-on-write break failed at GPA 0x%llx: %s",
		       (unsigned long long)ctx->gpa,
		       err == ENOMEM ? "out of memory" : strerror(err));
	if (err == ENOMEM || err == ENOSPC)
		return FAULT_OOM;
	ctx->err = err;
	ctx->failed = "the copy-on-write break of a shared page failed";
	return FAULT_SIGBUS;
}

fault_t dedup__break_cow(struct dedup *d, struct fault_ctx *ctx, uint64_t pi,
			 enum cow_charge *charge)
{
	struct mmu *mmu = d->mmu;
	struct dedup_node *node = d->rmap[pi].node;
	bool last = node->refs == 1;
	int err;

	/* The last sharer takes the shared page's charge over. */
	if (!last && *charge == COW_CHARGED)
		*charge = COW_UNCHARGED;
	else if (!last && (*charge == COW_NO_ROOM || mmu__charge_locked(mmu, 1)))
		return dedup__break_failed(d, ctx, ENOMEM);
	err = inject__check("dedup.cow");
	if (!err &&
	    pwrite(mmu->memfd, stable_page(d, node), PAGE, (off_t)(pi * PAGE)) != (ssize_t)PAGE)
		err = errno ? errno : EIO;
	err = err ?: -dedup__map_own(d, pi);
	if (err) {
		if (punch_pages(mmu->memfd, pi, 1) < 0) {
			/* a copy that stays allocated, unused, until the VM ends */
		}
		if (!last)
			mmu__uncharge(mmu, 1);
		return dedup__break_failed(d, ctx, err);
	}
	dedup__unshare(d, pi, last);
	D_STAT_INC(d, cow_breaks);
	dedup__wake(d, pi);
	return FAULT_DONE;
}

int dedup__discard(struct dedup *d, uint64_t pi)
{
	int ret = punch_pages(d->mmu->memfd, pi, 1);

	ret = ret ?: dedup__map_own(d, pi);
	if (ret)
		return ret;
	bit_test_clear(d->mmu->resident, pi);
	dedup__unshare(d, pi, false);
	return 0;
}

/* The next merged page at or after the unmerge cursor; false when none. */
static bool dedup__next_merged(struct dedup *d, uint64_t *pi)
{
	uint64_t n, i = d->unmerge_cursor;

	for (n = 0; n < d->mmu->nr_pages; n++, i = (i + 1) % d->mmu->nr_pages)
		if (bit_test(d->merged, i)) {
			*pi = i;
			return true;
		}
	return false;
}

int64_t dedup__unmerge(struct dedup *d, uint64_t nr)
{
	struct mmu *mmu = d->mmu;
	int64_t done = 0;
	uint64_t pi;

	while ((uint64_t)done < nr && !__atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE) &&
	       knob(d, &d->knobs.run) == 2 && dedup__next_merged(d, &pi)) {
		struct fault_ctx ctx = {
			.mmu = mmu,
			.gpa = guest_ram__gpa(&mmu->ram, pi * PAGE),
			.hva = guest_page(d, pi),
			.access = FAULT_WRITE,
			.vcpu = -1,
			.source = FAULT_SRC_MONITOR,
		};
		enum cow_charge was = mmu__charge_cow(mmu, &ctx, pi), charge = was;
		fault_t r = FAULT_DONE;

		pthread_mutex_lock(&mmu->reclaim_lock);
		dedup__wait_idle(d, pi);
		if (bit_test(d->merged, pi))
			r = dedup__break_cow(d, &ctx, pi, &charge);
		pthread_mutex_unlock(&mmu->reclaim_lock);
		mmu__charge_cow_end(mmu, was, charge);
		if (r != FAULT_DONE)
			return -ENOMEM;
		d->unmerge_cursor = (pi + 1) % mmu->nr_pages;
		D_STAT_INC(d, unmerged);
		done++;
	}
	return done;
}

/* ---- threads ------------------------------------------------------------------------- */

/* Sleep @ms (forever when 0 and @forever) unless run changes or dedup stops. */
static void dedup__sleep(struct dedup *d, uint64_t ms, bool forever)
{
	uint64_t run = knob(d, &d->knobs.run);
	struct timespec ts;

	pthread_mutex_lock(&d->wait_lock);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (!__atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE) && knob(d, &d->knobs.run) == run) {
		int r = forever ? pthread_cond_wait(&d->wake, &d->wait_lock)
				: pthread_cond_timedwait(&d->wake, &d->wait_lock, &ts);

		if (r == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&d->wait_lock);
}

/*
 * Every merge's mremap() waits until the reader thread has read its
 * UFFD_EVENT_REMAP: the scanner wakes the reader, then the reader wakes the
 * scanner. Between two CPUs each wake-up is an interprocessor interrupt (in
 * a VM, an exit or two); on one CPU it is a context switch. So for the
 * length of a batch (@on) both threads keep to the CPU the scanner is on,
 * and between batches (!@on) both may run wherever they could before. Only
 * with merging on (zero mode moves no mapping). A failure costs speed only.
 */
static void dedup__share_cpu(struct dedup *d, bool on)
{
	const cpu_set_t *set = &d->cpus;
	cpu_set_t one;
	int cpu = on ? sched_getcpu() : 0;

	if (d->mode != DEDUP_ON || !d->reader_started || cpu < 0 || !CPU_COUNT(&d->cpus))
		return;
	if (on) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		set = &one;
	}
	if (pthread_setaffinity_np(pthread_self(), sizeof(*set), set) ||
	    pthread_setaffinity_np(d->reader, sizeof(*set), set)) {
		/* each thread keeps the affinity it had */
	}
}

static void *dedup__scanner(void *arg)
{
	struct dedup *d = arg;

	if (pthread_getaffinity_np(pthread_self(), sizeof(d->cpus), &d->cpus))
		CPU_ZERO(&d->cpus); /* never moved, then */
	while (!__atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE)) {
		uint64_t run = knob(d, &d->knobs.run), batch = knob(d, &d->knobs.pages_to_scan);
		bool idle = run == 0;

		if (run == 1) {
			dedup__share_cpu(d, true);
			dedup__scan(d, batch);
			dedup__share_cpu(d, false);
		} else if (run == 2)
			idle = dedup__unmerge(d, batch) <= 0;
		dedup__sleep(d, knob(d, &d->knobs.sleep_ms), idle);
	}
	return NULL;
}

/* Write faults on merged pages, and the mremap events of merges. */
static void *dedup__reader(void *arg)
{
	struct dedup *d = arg;
	struct mmu *mmu = d->mmu;
	struct uffd_msg msgs[16];
	struct pollfd fds[2] = {{.fd = d->uffd, .events = POLLIN},
				{.fd = d->stop_fd, .events = POLLIN}};

	for (;;) {
		ssize_t n;

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		n = read(d->uffd, msgs, sizeof(msgs));
		for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof(msgs[0]); i++) {
			const struct uffd_msg *m = &msgs[i];
			uint8_t *hva =
				(uint8_t *)(uintptr_t)(m->arg.pagefault.address & ~(PAGE - 1));
			uint64_t off = (uint64_t)(hva - mmu->ram.host);
			struct fault_ctx ctx = {
				.mmu = mmu,
				.hva = hva,
				.access = FAULT_WRITE,
				.vcpu = -1,
				.flags = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_INTERRUPTIBLE |
					 FAULT_FLAG_WP,
				.source = FAULT_SRC_UFFD,
			};

			if (m->event != UFFD_EVENT_PAGEFAULT || off >= mmu->ram.size)
				continue; /* UFFD_EVENT_REMAP: a merge, read so that it goes on */
			ctx.gpa = guest_ram__gpa(&mmu->ram, off);
			if (mmu->ops.vcpu_of_tid)
				ctx.vcpu = mmu->ops.vcpu_of_tid(mmu->ops.owner,
								(int)m->arg.pagefault.feat.ptid);
			mmu__handle_fault(&ctx);
		}
	}
	return NULL;
}

int dedup__start_reader(struct dedup *d)
{
	int err = inject__check("pthread_create.dedup");

	err = err ?: pthread_create(&d->reader, NULL, dedup__reader, d);
	d->reader_started = !err;
	if (err)
		pr_err("cannot start the dedup fault reader: %s", strerror(err));
	return -err;
}

int dedup__start(struct dedup *d)
{
	int err = d->reader_started ? 0 : dedup__start_reader(d);

	if (err)
		return err;
	err = inject__check("pthread_create.dedup");
	err = err ?: pthread_create(&d->scanner, NULL, dedup__scanner, d);
	d->scanner_started = !err;
	if (err)
		pr_err("cannot start the dedup scanner: %s", strerror(err));
	return -err;
}

void dedup__stop(struct dedup *d)
{
	uint64_t one = 1;

	pthread_mutex_lock(&d->wait_lock);
	__atomic_store_n(&d->stopping, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&d->wake);
	pthread_mutex_unlock(&d->wait_lock);
	if (d->scanner_started)
		pthread_join(d->scanner, NULL);
	d->scanner_started = false;
	/* The reader last: a merge in flight waits for it to read its event. */
	if (d->stop_fd >= 0 && write(d->stop_fd, &one, sizeof(one)) < 0) {
		/* an eventfd counter cannot overflow from these writes */
	}
	if (d->reader_started)
		pthread_join(d->reader, NULL);
	d->reader_started = false;
}

/* ---- set-up ---------------------------------------------------------------------------- */

static int dedup__fail(const char *what, int err)
{
	pr_err("cannot set up dedup: %s failed: %s", what, strerror(err));
	return -err;
}

static int dedup__init_uffd(struct dedup *d)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_EVENT_REMAP |
			    UFFD_FEATURE_THREAD_ID,
	};
	int err = inject__check("userfaultfd.dedup");

	d->uffd = err ? -1 : (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (d->uffd < 0)
		return dedup__fail("userfaultfd", err ? err : errno);
	if (ioctl(d->uffd, UFFDIO_API, &api) < 0)
		return dedup__fail("UFFDIO_API (write-protect of shared memory needs Linux 5.19)",
				   errno);
	return 0;
}

static int dedup__init_state(struct dedup *d)
{
	uint64_t words = bitmap_words(d->mmu->nr_pages), i;

	d->rmap = calloc(d->mmu->nr_pages, sizeof(*d->rmap));
	d->slots = calloc(words, sizeof(unsigned long));
	d->merged = calloc(words, sizeof(unsigned long));
	d->busy = calloc(words, sizeof(unsigned long));
	d->nomerge = calloc(words, sizeof(unsigned long));
	d->waiting = calloc(words, sizeof(unsigned long));
	if (!d->rmap || !d->slots || !d->merged || !d->busy || !d->nomerge || !d->waiting)
		return dedup__fail("allocation of the page state", ENOMEM);
	for (i = 0; i < d->mmu->nr_pages; i++)
		d->rmap[i].pi = i;
	return 0;
}

/* What mmu.c calls, and all it knows of dedup (mmu.h). */
static const struct mmu_sharer_ops dedup_sharer_ops = {
	.busy = dedup__page_busy,
	.merged = dedup__page_merged,
	.park = dedup__park,
	.wait_idle = dedup__wait_idle,
	.break_cow = dedup__break_cow,
	.discard = dedup__discard,
	.wake = dedup__wake,
	.pin = dedup__pin,
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
	pthread_cond_init(&d->idle, NULL);
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
		return dedup__fail("write-protect of guest RAM", EOPNOTSUPP);
	ret = dedup__init_state(d);
	ret = ret ?: dedup__init_uffd(d);
	if (ret)
		return ret;
	d->stable_fd = memfd_create("faultline-dedup", MFD_CLOEXEC);
	if (d->stable_fd < 0)
		return dedup__fail("memfd_create", errno);
	if (ftruncate(d->stable_fd, (off_t)mmu->ram.size) < 0)
		return dedup__fail("ftruncate of the shared-page memfd", errno);
	d->stable = mmap(NULL, mmu->ram.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			 d->stable_fd, 0);
	if (d->stable == MAP_FAILED) {
		d->stable = NULL;
		return dedup__fail("mmap of the shared-page memfd", errno);
	}
	d->stop_fd = inject__fail("eventfd.dedup") ?: eventfd(0, EFD_CLOEXEC);
	if (d->stop_fd < 0)
		return dedup__fail("eventfd", errno);
	d->zero_checksum = XXH3_64bits(zero_page, PAGE);
	d->maps_fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	d->maps = dedup__count_maps(d);
	dedup__set_map_limit(d);
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
	free(d->merged);
	free(d->busy);
	free(d->nomerge);
	free(d->waiting);
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
