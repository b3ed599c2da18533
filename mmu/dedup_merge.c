/* Dedup's merging and its scan (mmu/dedup.h, dedup_int.h). */
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

/* ---- merging -------------------------------------------------------------------- */

/*
 * Put the @n shared pages from @slot on at guest pages @pi on: a mapping of
 * the stable memfd, registered with the dedup userfaultfd and
 * write-protected before mremap() moves it over the guest view, so no vCPU
 * ever sees it writable. Lock not held (mremap waits for the dedup reader
 * to read its event).
 */
static int dedup_map_shared(struct dedup *d, uint64_t pi, uint64_t n, uint64_t slot)
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
static void dedup_merged(struct dedup *d, uint64_t pi, uint64_t n, struct dedup_node **nodes)
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
		node->charged = true; /* the first page's charge is the shared page's now */
		bit_set(mmu->bits.dirty, pi + i); /* never reclaimed as a clean file page */
		bit_set(mmu->bits.merged, pi + i);
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
static void dedup_merge_into(struct dedup *d, uint64_t pi, uint64_t n, struct dedup_node **nodes,
			     int *ret)
{
	struct mmu *mmu = d->mmu;
	uint64_t a, b, i;
	int err;

	pthread_mutex_unlock(&mmu->reclaim_lock);
	for (a = 0; a < n; a = b) {
		for (b = a + 1; b < n && nodes[b]->slot == nodes[a]->slot + (b - a); b++)
			;
		err = dedup_map_shared(d, pi + a, b - a, nodes[a]->slot);
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
			dedup_merged(d, pi + a, b - a, nodes + a);
			continue;
		}
		for (i = a; i < b; i++)
			dedup__node_put(d, nodes[i], false);
	}
	dedup__update_sharing(d);
}

/* End the merge of @pi: failed ones get their protection back as it was. Lock held. */
static void dedup_merge_end(struct dedup *d, uint64_t pi, bool was_protected, int ret)
{
	if (ret)
		dedup__unprotect(d, pi, was_protected);
	dedup__unbusy(d, pi);
}

/* Write-protect pages [@first, @first + @n) of the guest view in one call. */
static int dedup_protect_range(struct dedup *d, uint64_t first, uint64_t n, const char *site)
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
static void dedup_merge_stretch(struct dedup *d, uint64_t pi, uint64_t n, struct dedup_node **nodes,
				const bool *was)
{
	bool same[DEDUP_MERGE_RUN_MAX];
	int ret[DEDUP_MERGE_RUN_MAX];
	uint64_t a, b, i;

	if (!dedup__maps_allow(d, n)) {
		for (i = 0; i < n; i++)
			dedup__node_put(d, nodes[i], false);
		return;
	}
	if (dedup_protect_range(d, pi, n, "dedup.protect")) {
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
			bit_set(d->mmu->bits.busy, pi + i);
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
		dedup_merge_into(d, pi + a, b - a, nodes + a, ret + a);
		for (i = a; i < b; i++)
			dedup_merge_end(d, pi + i, was[i], ret[i]);
	}
}

/*
 * Merge the pending run: of its pages, the ones still candidates, a
 * stretch at a time. The others drop their references. Lock held.
 */
static void dedup_merge_run(struct dedup *d)
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
		dedup_merge_stretch(d, first + a, b - a, d->run_nodes + a, was + a);
		a = b;
	}
}

/*
 * Candidate @pi merges into the shared page @node: it joins the pending
 * run, which is merged first unless @pi continues it. The reference is
 * taken first, since merging drops the lock. Lock held.
 */
static void dedup_add_merge(struct dedup *d, uint64_t pi, struct dedup_node *node)
{
	node->refs++;
	if (d->run_n && (pi != d->run_first + d->run_n || d->run_n == DEDUP_MERGE_RUN_MAX))
		dedup_merge_run(d);
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
static uint64_t dedup_nodes_new(struct dedup *d, const uint8_t *src, uint64_t n,
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
static void dedup_merge_equal_pairs(struct dedup *d, uint64_t a, uint64_t b, uint64_t n,
				    const uint64_t *sums, const bool *was_a, const bool *was_b)
{
	struct dedup_node *nodes[DEDUP_MERGE_RUN_MAX];
	int ra[DEDUP_MERGE_RUN_MAX], rb[DEDUP_MERGE_RUN_MAX];
	uint64_t i, j, k;

	for (i = 0; i < n; i += k) {
		k = dedup_nodes_new(d, alias_page(d, a + i), n - i, sums + i, nodes);
		if (k) {
			for (j = 0; j < k; j++)
				nodes[j]->refs = 2;
			dedup_merge_into(d, a + i, k, nodes, ra + i);
			dedup_merge_into(d, b + i, k, nodes, rb + i);
		} else {
			k = n - i; /* no shared page: the rest stays as it was */
			for (j = i; j < n; j++)
				ra[j] = rb[j] = -ENOMEM;
		}
		for (j = i; j < i + k; j++) {
			dedup_merge_end(d, a + j, was_a[j], ra[j]);
			dedup_merge_end(d, b + j, was_b[j], rb[j]);
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
static void dedup_merge_pair_stretch(struct dedup *d, uint64_t a, uint64_t b, uint64_t n,
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
	if (dedup_protect_range(d, a, n, "dedup.protect") ||
	    dedup_protect_range(d, b, n, "dedup.protect")) {
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
			bit_set(d->mmu->bits.busy, a + i);
			bit_set(d->mmu->bits.busy, b + i);
			continue;
		}
		dedup__unprotect(d, a + i, was_a[i]);
		dedup__unprotect(d, b + i, was_b[i]);
	}
	for (s = 0; s < n; s = e) {
		for (e = s; e < n && same[e] == same[s]; e++)
			;
		if (same[s])
			dedup_merge_equal_pairs(d, a + s, b + s, e - s, sums + s, was_a + s,
						was_b + s);
	}
}

/*
 * Merge the pending pairs: a stretch at a time of those whose pages are
 * both still candidates. Lock held.
 */
static void dedup_merge_pairs(struct dedup *d)
{
	uint64_t n = d->pair_n, s = 0, e;

	d->pair_n = 0;
	while (s < n) {
		for (e = s; e < n && dedup__candidate(d, d->pair_a + e) &&
			    dedup__candidate(d, d->pair_b + e);
		     e++)
			;
		if (e > s)
			dedup_merge_pair_stretch(d, d->pair_a + s, d->pair_b + s, e - s,
						 d->pair_sums + s);
		s = e == s ? s + 1 : e;
	}
}

/*
 * Candidate @b (checksum @sum) and @a, from this pass's unstable index,
 * hold the same bytes: the pair joins the pending pairs (@a leaves the
 * index). Lock held.
 */
static void dedup_add_pair(struct dedup *d, uint64_t a, uint64_t b, uint64_t sum)
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
static bool dedup_continues_pairs(struct dedup *d, uint64_t pi, uint64_t sum)
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
static struct dedup_rmap *dedup_unstable_find(struct dedup *d, uint64_t checksum, uint64_t pi)
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
static bool dedup_checksum_gate(struct dedup *d, struct dedup_rmap *r, uint64_t sum)
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
 * mapped wakes its waiter: mmu_fault_once()). A file-backed VM marks them
 * so that the file is not read for them. Lock held.
 */
static void dedup_punch_zeros(struct dedup *d, uint64_t first, uint64_t n, const bool *was)
{
	struct mmu *mmu = d->mmu;
	uint64_t i;

	if (!n)
		return;
	for (i = first; i < first + n; i++)
		bit_test_clear(mmu->bits.resident, i);
	if (inject__check("dedup.zero_punch") || punch_pages(mmu->memfd, first, n) < 0) {
		for (i = first; i < first + n; i++) {
			bit_set(mmu->bits.resident, i);
			dedup__unprotect(d, i, was[i - first]);
		}
		D_STAT_ADD(d, merge_errors, n);
		return;
	}
	for (i = first; i < first + n; i++) {
		if (mmu->wp)
			bit_set(mmu->bits.zeroed, i);
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
static void dedup_release_zeros(struct dedup *d)
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
		if (dedup_protect_range(d, a, b - a, "dedup.zero_protect")) {
			D_STAT_ADD(d, merge_errors, b - a);
			for (i = a; i < b; i++)
				dedup__unprotect(d, i, was[i - a]);
			a = b;
			continue;
		}
		/* Punch each stretch of pages still all zeros; give the others back. */
		for (i = keep = a; i < b; i++) {
			if (!memcmp(alias_page(d, i), dedup_zero_page, PAGE))
				continue;
			dedup_punch_zeros(d, keep, i - keep, was + (keep - a));
			dedup__unprotect(d, i, was[i - a]);
			keep = i + 1;
		}
		dedup_punch_zeros(d, keep, b - keep, was + (keep - a));
		a = b;
	}
}

/* Zero page @pi joins the pending run, which is released first unless @pi continues it. */
static void dedup_add_zero(struct dedup *d, uint64_t pi)
{
	if (d->zero_n && (pi != d->zero_first + d->zero_n || d->zero_n == DEDUP_ZERO_RUN_MAX))
		dedup_release_zeros(d);
	if (!d->zero_n)
		d->zero_first = pi;
	d->zero_n++;
}

static void dedup_scan_page(struct dedup *d, uint64_t pi)
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
	if (!dedup_checksum_gate(d, r, sum))
		goto out;
	if (sum == d->zero_checksum && !memcmp(alias_page(d, pi), dedup_zero_page, PAGE)) {
		dedup_add_zero(d, pi);
		goto out;
	}
	if (d->mode != DEDUP_ON || r->seq == d->seq)
		goto out;
	if (d->pair_n && dedup_continues_pairs(d, pi, sum)) {
		dedup_add_pair(d, d->pair_a + d->pair_n, pi, sum);
		goto out;
	}
	/* Pending pairs are merged first: their shared pages may be this page's. */
	if (d->pair_n) {
		dedup_merge_pairs(d);
		if (!dedup__candidate(d, pi)) /* the lock was dropped */
			goto out;
	}
	node = dedup__stable_find(d, sum, alias_page(d, pi));
	if (node) {
		dedup_add_merge(d, pi, node);
		goto out;
	}
	peer = dedup_unstable_find(d, sum, pi);
	if (peer) {
		dedup_add_pair(d, peer->pi, pi, sum);
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
static void dedup_flush(struct dedup *d)
{
	if (!d->zero_n && !d->run_n && !d->pair_n)
		return;
	pthread_mutex_lock(&d->mmu->reclaim_lock);
	if (d->zero_n)
		dedup_release_zeros(d);
	if (d->pair_n)
		dedup_merge_pairs(d);
	if (d->run_n)
		dedup_merge_run(d);
	pthread_mutex_unlock(&d->mmu->reclaim_lock);
}

/* A pass ended: the unstable index starts again, the mapping count is refreshed. */
static void dedup_pass_done(struct dedup *d)
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
		dedup_scan_page(d, d->cursor);
		if (++d->cursor == d->mmu->nr_pages) {
			d->cursor = 0;
			dedup_flush(d);
			dedup_pass_done(d);
		}
	}
	dedup_flush(d);
	return n;
}
