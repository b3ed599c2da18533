/* The page bits' allocation, and waiting on a busy page (page_bits.h). */
#include <errno.h>
#include <stdlib.h>

#include "lib/inject.h"
#include "mmu/page_bits.h"

int page_bits__init(struct page_bits *pb, uint64_t nr_pages)
{
	unsigned long **maps[] = {&pb->resident, &pb->dirty,	&pb->poisoned, &pb->zeroed,
				  &pb->merged,	 &pb->busy,	&pb->nomerge,  &pb->waiting,
				  &pb->written,	 &pb->recorded, &pb->planned,  &pb->prefetched,
				  &pb->wswritten};
	uint64_t words = bitmap_words(nr_pages);
	size_t i;

	pthread_cond_init(&pb->idle, NULL);
	pb->ready = true;
	for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		*maps[i] = inject__check("calloc.page_bits")
				   ? NULL
				   : calloc(words ? words : 1, sizeof(unsigned long));
		if (!*maps[i])
			return -ENOMEM;
	}
	return 0;
}

void page_bits__exit(struct page_bits *pb)
{
	free(pb->resident);
	free(pb->dirty);
	free(pb->poisoned);
	free(pb->zeroed);
	free(pb->merged);
	free(pb->busy);
	free(pb->nomerge);
	free(pb->waiting);
	free(pb->written);
	free(pb->recorded);
	free(pb->planned);
	free(pb->prefetched);
	free(pb->wswritten);
	pb->written = pb->recorded = pb->planned = pb->prefetched = pb->wswritten = NULL;
	pb->resident = pb->dirty = pb->poisoned = pb->zeroed = NULL;
	pb->merged = pb->busy = pb->nomerge = pb->waiting = NULL;
	if (pb->ready)
		pthread_cond_destroy(&pb->idle);
	pb->ready = false;
}

void page_bits__wait(struct page_bits *pb, uint64_t pi, pthread_mutex_t *lock)
{
	while (bit_test(pb->busy, pi))
		pthread_cond_wait(&pb->idle, lock);
}

bool page_bits__unbusy(struct page_bits *pb, uint64_t pi)
{
	bit_test_clear(pb->busy, pi);
	pthread_cond_broadcast(&pb->idle);
	return bit_test_clear(pb->waiting, pi);
}
