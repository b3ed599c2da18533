/*
 * The page bits (mmu/page_bits.h): each query reads its own bit, a merge's
 * end reports a parked writer once, and a waiter goes on when the page
 * stops being busy.
 */
#include <pthread.h>
#include <time.h>

#include "mmu/page_bits.h"
#include "tests/unit/unit.h"

#define NR 130 /* three words: the last bit is in a word of its own */

static struct page_bits pb;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool waited;

START_TEST(queries_read_their_own_bit)
{
	uint64_t pi;

	ck_assert_int_eq(page_bits__init(&pb, NR), 0);
	for (pi = 0; pi < NR; pi++)
		ck_assert(!page_bits__resident(&pb, pi) && !page_bits__dirty(&pb, pi) &&
			  !page_bits__poisoned(&pb, pi) && !page_bits__merged(&pb, pi) &&
			  !page_bits__busy(&pb, pi) && !page_bits__mergeable(&pb, pi));
	bit_set(pb.resident, NR - 1);
	ck_assert(page_bits__resident(&pb, NR - 1));
	ck_assert(!page_bits__resident(&pb, NR - 2));
	ck_assert(page_bits__mergeable(&pb, NR - 1));
	bit_set(pb.poisoned, NR - 1);
	ck_assert(!page_bits__mergeable(&pb, NR - 1));
	bit_test_clear(pb.poisoned, NR - 1);
	bit_set(pb.merged, NR - 1);
	ck_assert(page_bits__merged(&pb, NR - 1) && !page_bits__mergeable(&pb, NR - 1));
	bit_test_clear(pb.merged, NR - 1);
	page_bits__pin(&pb, NR - 1);
	ck_assert(!page_bits__mergeable(&pb, NR - 1));
	bit_set(pb.resident, 64);
	bit_set(pb.busy, 64);
	ck_assert(page_bits__busy(&pb, 64) && !page_bits__mergeable(&pb, 64));
	page_bits__exit(&pb);
	ck_assert_ptr_null(pb.resident);
	page_bits__exit(&pb); /* twice: nothing left to free */
}
END_TEST

START_TEST(unbusy_reports_a_parked_writer_once)
{
	ck_assert_int_eq(page_bits__init(&pb, NR), 0);
	bit_set(pb.busy, 3);
	ck_assert(!page_bits__unbusy(&pb, 3)); /* nobody parked */
	ck_assert(!page_bits__busy(&pb, 3));
	bit_set(pb.busy, 3);
	page_bits__park(&pb, 3);
	ck_assert(page_bits__unbusy(&pb, 3));
	ck_assert(!page_bits__unbusy(&pb, 3)); /* woken once */
	page_bits__exit(&pb);
}
END_TEST

static void *waiter(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	page_bits__wait(&pb, 7, &lock);
	__atomic_store_n(&waited, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&lock);
	return NULL;
}

START_TEST(wait_ends_with_the_merge)
{
	const struct timespec ms50 = {0, 50 * 1000 * 1000};
	pthread_t t;

	ck_assert_int_eq(page_bits__init(&pb, NR), 0);
	waited = false;
	bit_set(pb.busy, 7);
	ck_assert_int_eq(pthread_create(&t, NULL, waiter, NULL), 0);
	nanosleep(&ms50, NULL);
	ck_assert(!__atomic_load_n(&waited, __ATOMIC_ACQUIRE));
	pthread_mutex_lock(&lock);
	ck_assert(!page_bits__unbusy(&pb, 7));
	pthread_mutex_unlock(&lock);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert(waited);
	/* A page that is not busy: no wait. */
	pthread_mutex_lock(&lock);
	page_bits__wait(&pb, 7, &lock);
	pthread_mutex_unlock(&lock);
	page_bits__exit(&pb);
}
END_TEST

Suite *page_bits_suite(void)
{
	Suite *s = suite_create("page_bits");
	TCase *tc = tcase_create("page_bits");

	tcase_add_test(tc, queries_read_their_own_bit);
	tcase_add_test(tc, unbusy_reports_a_parked_writer_once);
	tcase_add_test(tc, wait_ends_with_the_merge);
	suite_add_tcase(s, tc);
	return s;
}
